"""The intent model's fast reading gives exactly the answers of the straightforward one.

``ref_features`` and ``ref_read`` below are the implementation of ``intent.features`` and ``IntentModel.read``
as it was before it was made faster (copied, not imported): the shipped weights were trained on those feature
indices, so the fast path must give the same indices in the same order, the same score, the same words count
and the same top n-grams (ties broken as ``heapq.nlargest`` with a key breaks them: earlier n-gram first).
"""

from __future__ import annotations

import heapq
import json
import math
import re
import zlib
from array import array
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmproxy.routing import intent
from llmproxy.routing.intent import (
    _CUT,
    _DEBRIS,
    _HEAD,
    _WORDS,
    MAX_CHARS,
    SEED_BIGRAM,
    SEED_CHAR,
    SEED_WORD,
    SHRINK,
    IntentModel,
)
from llmproxy.routing.mask import mask

HERE = Path(__file__).parent
MODEL = intent.load()


# ------------------------------------------------------------------------------ the reference (the old code)

_BLANKS = re.compile(r"\s+")


def ref_prepare(text: str) -> str:
    if len(text) > 2 * _CUT:
        text = text[:_CUT] + "\n" + text[-_CUT:]
    masked = mask(text)[0] if text else ""
    low = _BLANKS.sub(" ", _DEBRIS.sub(" ", masked)).strip().lower()
    if len(low) > MAX_CHARS:
        low = low[:_HEAD] + " " + low[-(MAX_CHARS - _HEAD):]
    return low

def ref_grams(low: str) -> tuple[list[str], list[str], list[str]]:
    words = _WORDS.findall(low)
    padded = f" {low} "
    chars = [padded[i:i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1)]
    return words, [f"{a} {b}" for a, b in pairwise(words)], chars


def ref_features(low: str, bits: int) -> tuple[list[int], list[str]]:
    m = (1 << bits) - 1
    crc = zlib.crc32
    words, bigrams, chars = ref_grams(low)
    idx = [crc(g.encode(), SEED_WORD) & m for g in words]
    idx += [crc(g.encode(), SEED_BIGRAM) & m for g in bigrams]
    idx += [crc(g.encode(), SEED_CHAR) & m for g in chars]
    return idx, words + bigrams + chars


def ref_sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def ref_read(model: IntentModel, text: str, k: int = 3) -> tuple[float, int, list[tuple[str, float]]]:
    low = ref_prepare(text)
    idx, names = ref_features(low, model.bits)
    if not idx:
        return ref_sigmoid(model.bias), 0, []
    w = model.weights
    ws = [w[i] for i in idx]
    unit = model.scale / math.sqrt(len(idx) + SHRINK)
    score = ref_sigmoid(model.bias + unit * sum(ws))
    contrib: dict[str, float] = {}
    for j in heapq.nlargest(4 * k, range(len(ws)), key=lambda j: abs(ws[j])) if k else ():
        contrib[names[j].strip()] = contrib.get(names[j].strip(), 0.0) + unit * ws[j]
    top = sorted(contrib.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:k]
    return score, len(_WORDS.findall(low)), top


def same_reading(model: IntentModel, text: str, k: int = 3) -> None:
    r = model.read(text, k)
    assert (r.score, r.words, r.top) == ref_read(model, text, k)


# ------------------------------------------------------------------------------ models with many ties

def tiny_model(bits: int, values: list[int], seed: int) -> IntentModel:
    """A model with few buckets and few distinct weights (including -128, whose magnitude is 128): most n-grams
    tie on their weight, which is where the choice of the top n-grams can go wrong."""
    w = array("b", (values[(i * 2654435761 + seed) % len(values)] for i in range(1 << bits)))
    return IntentModel(bits, 0.25, 0.05, w)


TINY = [tiny_model(4, [0, 1, -1, 3], 1), tiny_model(6, [-128, 127, 0, 5, -5, 5], 7), tiny_model(3, [2, -2], 0),
        tiny_model(5, [0], 3), tiny_model(8, list(range(-128, 128)), 11)]

# ------------------------------------------------------------------------------ texts

ASCII_WORDS = ("the why does worker pool hang under load plan migration of storage layer design a an it is "
               "think about tradeoffs fix typo rename variable quick question please explain debug").split()
OTHER_WORDS = ("perché il servizio è lento café naïve übergröße 数据库 迁移 計画 なぜ 🚀 🤔 éé ß ﬁle Ⅻ ½ ²").split()
PUNCT = list("?!.,;:'\"`()[]{}<>/\\|-_=+*&^%$#@~\t\n ")

word = st.sampled_from(ASCII_WORDS + OTHER_WORDS)
ascii_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=300)
any_text = st.text(max_size=300)
wordy = st.lists(st.one_of(word, st.sampled_from(PUNCT)), max_size=120).map(" ".join)
repeated = st.tuples(st.lists(word, min_size=1, max_size=4), st.integers(1, 60)).map(lambda t: " ".join(t[0] * t[1]))
long_text = st.tuples(st.one_of(wordy, repeated, ascii_text), st.integers(2, 40)).map(
    lambda t: (t[0] + "\n") * t[1])  # often beyond MAX_CHARS, sometimes beyond the masking cut too
texts = st.one_of(ascii_text, any_text, wordy, repeated, long_text, st.just(""))


@settings(max_examples=300, deadline=None)
@given(texts)
@example("")
@example(" ")
@example("a")
@example("ab")
@example("é")
@example("À LA CARTE Ünïcode 数据 🚀🚀🚀")
@example("under_score 42 x2 __init__")
def test_features_are_the_reference_features(text):
    prepared = intent.prepare(text)
    assert prepared == ref_prepare(text)
    for low in (prepared, text):  # prepared text (as training and scoring see it) and raw text alike
        for bits in (4, 18, MODEL.bits):
            assert intent.features(low, bits) == ref_features(low, bits)


@settings(max_examples=300, deadline=None)
@given(texts, st.integers(-1, 6))
@example("", 3)
@example("fix fix fix fix fix fix fix fix", 3)
@example("why why why why why does the pool hang hang hang", 5)
def test_reading_is_the_reference_reading(text, k):
    same_reading(MODEL, text, k)
    for model in TINY:
        same_reading(model, text, k)


def labelled_texts() -> list[str]:
    rows = []
    for name in ("blind.jsonl", "blind_train.jsonl", "prompts.jsonl"):
        rows += [json.loads(line)["text"] for line in (HERE / name).read_text(encoding="utf-8").splitlines() if line]
    return rows


@pytest.mark.parametrize("k", [0, 3])
def test_every_labelled_text_reads_as_before(k):
    """The labelled sets (the blind evaluation's and the training texts) in many languages: no answer changes."""
    for text in labelled_texts():
        same_reading(MODEL, text, k)
        same_reading(TINY[1], text, k)
