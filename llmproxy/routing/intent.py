"""The learned intent signal: does the user's request deserve the reasoning model, whatever words it uses?

A logistic regression over hashed features of the human text only — after masking (code, quotes, logs, paths,
flags blanked, as keyword matching sees it), lower-cased, blanks collapsed, bounded to ``MAX_CHARS`` (the head
and the tail: the question is usually at one end of a pasted log). Features: word unigrams and bigrams and
character 3-5-grams, each hashed (CRC-32 with a per-kind seed) into ``2**bits`` buckets; a feature's value is
its count divided by the square root of (the number of features + ``SHRINK``), so a short text, little evidence,
stays near the prior. The weights are int8 with one scale, shipped in
``llmproxy/data/intent_model.json`` and trained by ``scripts/train_intent.py`` on the tune halves of the labelled
sets. Deterministic, pure Python, no dependency: ~0.1-0.7 ms for a prompt of 30-500 characters.

``IntentModel.read(text) -> Reading``: the score in [0, 1], the words read, and the n-grams that weighed most.
"""

from __future__ import annotations

import base64
import functools
import heapq
import json
import math
import re
import zlib
from array import array
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from llmproxy.routing.mask import mask

MODEL_FILE = Path(__file__).resolve().parents[1] / "data" / "intent_model.json"
MAX_CHARS = 480  # text the model reads: the first 320 and the last 160 characters, blanks collapsed
_HEAD = 320
_CUT = 1536
_WORDS = re.compile(r"\w+")
_BLANKS = re.compile(r"\s+")
_DEBRIS = re.compile(r"[^\w\s'?]+")  # what masking leaves of code and JSON: brackets, colons, commas …
SEED_CHAR, SEED_WORD, SEED_BIGRAM = 0, 1, 2
SHRINK = 64
VETO_MIN_WORDS = 8  # a shorter request is too little evidence for the model to overrule a keyword match
INTENT_MIN_WORDS = 6  # ... or to escalate on its own ("investigate the router", "the weight of each shard")


def prepare(text: str) -> str:
    """What the model reads: the masked text without punctuation debris (only words, blanks, ' and ?), lower-cased,
    blanks collapsed, bounded."""
    if len(text) > 2 * _CUT:  # bound the masking work: the head and the tail of a long paste
        text = text[:_CUT] + "\n" + text[-_CUT:]
    masked = mask(text)[0] if text else ""
    low = _BLANKS.sub(" ", _DEBRIS.sub(" ", masked)).strip().lower()
    if len(low) > MAX_CHARS:
        low = low[:_HEAD] + " " + low[-(MAX_CHARS - _HEAD):]
    return low


def grams(low: str) -> tuple[list[str], list[str], list[str]]:
    """Word unigrams, word bigrams and character 3-5-grams (of the text padded with a blank) of prepared text."""
    words = _WORDS.findall(low)
    padded = f" {low} "
    chars = [padded[i:i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1)]
    return words, [f"{a} {b}" for a, b in pairwise(words)], chars


def features(low: str, bits: int) -> tuple[list[int], list[str]]:
    """The hashed feature index of every n-gram of prepared text (repeats included) and the n-grams themselves,
    in the same order. Used alike by training and by scoring."""
    m = (1 << bits) - 1
    crc = zlib.crc32
    words, bigrams, chars = grams(low)
    idx = [crc(g.encode(), SEED_WORD) & m for g in words]
    idx += [crc(g.encode(), SEED_BIGRAM) & m for g in bigrams]
    idx += [crc(g.encode(), SEED_CHAR) & m for g in chars]
    return idx, words + bigrams + chars


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
        """Score the human text (masked here) and name the ``k`` n-grams that weighed most, in one pass."""
        low = prepare(text)
        idx, names = features(low, self.bits)
        if not idx:
            return Reading(_sigmoid(self.bias), 0, [])
        w = self.weights
        ws = [w[i] for i in idx]
        unit = self.scale / math.sqrt(len(idx) + SHRINK)
        score = _sigmoid(self.bias + unit * sum(ws))
        contrib: dict[str, float] = {}
        for j in heapq.nlargest(4 * k, range(len(ws)), key=lambda j: abs(ws[j])) if k else ():
            contrib[names[j].strip()] = contrib.get(names[j].strip(), 0.0) + unit * ws[j]
        top = sorted(contrib.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:k]
        return Reading(score, len(_WORDS.findall(low)), top)

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
