"""The learned intent signal: does the user's request deserve the reasoning model, whatever words it uses?

A logistic regression over hashed features of the human text only — after masking (code, quotes, logs, paths,
flags blanked, as keyword matching sees it), lower-cased, blanks collapsed, bounded to ``MAX_CHARS`` (the head
and the tail: the question is usually at one end of a pasted log). Features: word unigrams and bigrams and
character 3-5-grams, each hashed (CRC-32 with a per-kind seed) into ``2**bits`` buckets; a feature's value is
its count divided by the square root of (the number of features + ``SHRINK``), so a short text, little evidence,
stays near the prior. The weights are int8 with one scale, shipped in
``llmproxy/data/intent_model.json`` and trained by ``scripts/train_intent.py`` on the tune halves of the labelled
sets. Deterministic, pure Python, no dependency: ~0.04-0.3 ms for a prompt of 30-600 characters.

``IntentModel.read(text) -> Reading``: the score in [0, 1], the words read, and the n-grams that weighed most.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
import zlib
from array import array
from dataclasses import dataclass
from itertools import pairwise
from operator import itemgetter
from pathlib import Path

from llmproxy.routing.mask import mask

MODEL_FILE = Path(__file__).resolve().parents[1] / "data" / "intent_model.json"
MAX_CHARS = 480  # text the model reads: the first 320 and the last 160 characters, blanks collapsed
_HEAD = 320
_CUT = 1536
_WORDS = re.compile(r"\w+")
_ASCII_WORDS = re.compile(rb"\w+")  # on ASCII text the same words as _WORDS: \w of an ASCII character is [a-zA-Z0-9_]
_DEBRIS = re.compile(r"[^\w\s'?]+")  # what masking leaves of code and JSON: brackets, colons, commas …
SEED_CHAR, SEED_WORD, SEED_BIGRAM = 0, 1, 2
_CHAR_N = (3, 4, 5)
_SLICES = {n: tuple(slice(i, i + n) for i in range(MAX_CHARS + 3)) for n in _CHAR_N}  # enough for prepared text
_MAGNITUDE = bytes(abs(b - 256 if b > 127 else b) for b in range(256))  # an int8 as an unsigned byte -> |int8|
_BELOW = tuple(bytes(range(level)) for level in range(130))  # the magnitudes below each level, to delete
SHRINK = 64
VETO_MIN_WORDS = 8  # a shorter request is too little evidence for the model to overrule a keyword match
INTENT_MIN_WORDS = 6  # ... or to escalate on its own ("investigate the router", "the weight of each shard")


def prepare(text: str) -> str:
    """What the model reads: the masked text without punctuation debris (only words, blanks, ' and ?), lower-cased,
    blanks collapsed, bounded."""
    if len(text) > 2 * _CUT:  # bound the masking work: the head and the tail of a long paste
        text = text[:_CUT] + "\n" + text[-_CUT:]
    masked = mask(text)[0] if text else ""
    low = " ".join(_DEBRIS.sub(" ", masked).split()).lower()  # str.split() splits where \s matches, 4x cheaper
    if len(low) > MAX_CHARS:
        low = low[:_HEAD] + " " + low[-(MAX_CHARS - _HEAD):]
    return low


def grams(low: str) -> tuple[list[str], list[str], list[str]]:
    """Word unigrams, word bigrams and character 3-5-grams (of the text padded with a blank) of prepared text."""
    words = _WORDS.findall(low)
    return words, [f"{a} {b}" for a, b in pairwise(words)], list(_char_grams(f" {low} "))


def features(low: str, bits: int) -> tuple[list[int], list[str]]:
    """The hashed feature index of every n-gram of prepared text (repeats included) and the n-grams themselves,
    in the same order. Used alike by training and by scoring."""
    words, bigrams, chars = grams(low)
    return _indices(low, bits)[0], words + bigrams + chars


def _indices(low: str, bits: int) -> tuple[list[int], list[bytes]]:
    """The feature indices of ``features`` (CRC-32 of the UTF-8 bytes of each n-gram, the kind's seed, masked)
    and the words as UTF-8, without the n-gram names: ``read`` names only the few n-grams it reports."""
    m = (1 << bits) - 1
    crc = zlib.crc32
    words, chars = _utf8_grams(low)
    idx = [crc(w, SEED_WORD) & m for w in words]
    idx += [crc(b" ".join(pair), SEED_BIGRAM) & m for pair in pairwise(words)]
    idx += [crc(g, SEED_CHAR) & m for g in chars]
    return idx, words


def _utf8_grams(low: str) -> tuple[list[bytes], tuple[bytes, ...]]:
    """The words and character 3-5-grams of ``grams``, as UTF-8. ASCII text (the usual case) is encoded once and
    cut into byte n-grams; other text is cut into character n-grams, each encoded (a character n-gram of
    non-ASCII text is not a byte n-gram)."""
    if low.isascii():
        text = low.encode()
        return _ASCII_WORDS.findall(text), _char_grams(b" " + text + b" ")
    return [w.encode() for w in _WORDS.findall(low)], tuple(g.encode() for g in _char_grams(f" {low} "))


def _char_grams(padded: str | bytes) -> tuple:
    """All 3-grams, then all 4-grams, then all 5-grams of ``padded``, cut in C by one ``itemgetter`` over slices
    made once at import (a third cheaper than slicing in a Python loop)."""
    spans: tuple[slice, ...] = ()
    for n in _CHAR_N:
        count = max(0, len(padded) - n + 1)
        made = _SLICES[n]
        spans += made[:count] if count <= len(made) else tuple(slice(i, i + n) for i in range(count))
    return _gather(padded, spans)


def _gather(data, keys: tuple | list) -> tuple:
    """``tuple(data[k] for k in keys)`` in one C call (``itemgetter`` of a single key returns the item itself,
    of none it cannot be made: those two cases the slow way)."""
    if len(keys) < 2:
        return tuple(data[k] for k in keys)
    return itemgetter(*keys)(data)


def _strongest(magnitudes: bytes, n: int) -> list[int]:
    """The positions of the ``n`` largest of ``magnitudes`` (0-128), largest first and the earlier first among
    equals: what ``heapq.nlargest(n, range(len(ws)), key=abs(ws[j]))`` returns, without a Python key call per
    n-gram. The level of the ``n``-th largest is bisected (how many magnitudes reach a level: the length of the
    bytes without those below it), then the positions are found level by level with ``bytes.find``."""
    lo, hi = 0, 128
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(magnitudes.translate(None, _BELOW[mid])) >= n:
            lo = mid
        else:
            hi = mid - 1
    out: list[int] = []
    for level in [*sorted(set(magnitudes.translate(None, _BELOW[lo + 1])), reverse=True), lo]:  # < n above lo
        at = magnitudes.find(level)
        while at >= 0 and len(out) < n:
            out.append(at)
            at = magnitudes.find(level, at + 1)
    return out


def _gram_name(j: int, words: list[bytes], padded: str) -> str:
    """The name of the ``j``-th feature of the text (in the order of ``features``): words, then bigrams, then
    the character 3-, 4- and 5-grams of ``padded``."""
    if j < len(words):
        return words[j].decode()
    j -= len(words)
    if j < len(words) - 1:
        return (words[j] + b" " + words[j + 1]).decode()
    j -= max(len(words) - 1, 0)
    for n in _CHAR_N:
        count = max(0, len(padded) - n + 1)
        if j < count:
            return padded[j:j + n]
        j -= count
    raise IndexError(j)


@dataclass(frozen=True)
class Reading:
    score: float  # P(the request deserves the reasoning model)
    words: int  # words read (the rule in decide.py ignores the model on very short requests)
    top: list[tuple[str, float]]  # the n-grams that moved the score most, with their signed contribution


@dataclass(frozen=True)
class IntentModel:
    bits: int
    bias: float
    scale: float
    weights: array  # int8, 2**bits
    trained_on: str = ""

    def read(self, text: str, k: int = 3) -> Reading:
        """Score the human text (masked here) and name the ``k`` n-grams that weighed most, in one pass. The
        weights are gathered as unsigned bytes (one C call), then read as int8 for the sum and through a table as
        magnitudes for the top n-grams."""
        low = prepare(text)
        idx, words = _indices(low, self.bits)
        if not idx:
            return Reading(_sigmoid(self.bias), 0, [])
        raw = bytes(_gather(memoryview(self.weights).cast("B"), idx))
        ws = array("b", raw)
        unit = self.scale / math.sqrt(len(idx) + SHRINK)
        score = _sigmoid(self.bias + unit * sum(ws))
        contrib: dict[str, float] = {}
        padded = f" {low} "
        for j in _strongest(raw.translate(_MAGNITUDE), 4 * k) if k > 0 else ():
            name = _gram_name(j, words, padded).strip()
            contrib[name] = contrib.get(name, 0.0) + unit * ws[j]
        top = sorted(contrib.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:k]
        return Reading(score, len(words), top)

    def score(self, text: str) -> float:
        return self.read(text, 0).score


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def dumps(bits: int, bias: float, weights: list[float], trained_on: str) -> str:
    """Quantise float weights to int8 with one scale and serialise (compressed, base64) as JSON."""
    top = max((abs(w) for w in weights), default=0.0) or 1.0
    scale = top / 127.0
    q = array("b", (max(-127, min(127, round(w / scale))) for w in weights))
    blob = base64.b64encode(zlib.compress(q.tobytes(), 9)).decode()
    return json.dumps({"format": "llmproxy-intent-1", "bits": bits, "bias": bias, "scale": scale,
                       "trained_on": trained_on, "weights_int8_zlib_b64": blob}, indent=1) + "\n"


def loads(text: str) -> IntentModel:
    data = json.loads(text)
    if data.get("format") != "llmproxy-intent-1":
        raise ValueError(f"not an intent model (format {data.get('format')!r})")
    bits = int(data["bits"])
    w = array("b")
    w.frombytes(zlib.decompress(base64.b64decode(data["weights_int8_zlib_b64"])))
    if len(w) != 1 << bits:
        raise ValueError(f"intent model: {len(w)} weights for {bits} bits")
    return IntentModel(bits, float(data["bias"]), float(data["scale"]), w, str(data.get("trained_on", "")))


@functools.cache
def load(path: Path = MODEL_FILE) -> IntentModel:
    """The model in ``path`` (the bundled one by default), read once per process: the profiles that use it share
    one copy (~256 KB of int8 weights in memory)."""
    return loads(path.read_text(encoding="utf-8"))
