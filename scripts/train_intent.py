"""Train the learned intent signal (llmproxy/routing/intent.py) and choose its thresholds by cross-validation.

Data: the ``tune`` rows of the intelligent profile in tests/routing/prompts.jsonl, blind.jsonl and blind_train.jsonl
(the held-out halves are never read here). Label: escalate (any concept) or not. Model: L2-regularised logistic
regression over the hashed features ``intent.features`` produces, fitted by AdaGrad in pure Python with a fixed
shuffle (deterministic: the same data gives the same bytes). Thresholds: 5-fold cross-validation gives every tune
row a score from a model that did not see it; the
operating points are chosen from those scores alone (``choose``) and printed for profiles/intelligent.toml, with
what the combination rule (decide.py) would give on these rows.

Usage: python scripts/train_intent.py [--bits 18] [--out llmproxy/data/intent_model.json] [--check]
``--check`` trains and reports without writing the model.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections import Counter
from pathlib import Path

from llmproxy import config, routing
from llmproxy.routing import evaluate, intent

REPO = Path(__file__).resolve().parents[1]
SETS = (REPO / "tests" / "routing" / "prompts.jsonl", REPO / "tests" / "routing" / "blind.jsonl",
        REPO / "tests" / "routing" / "blind_train.jsonl")
FOLDS = 5
NEG_WEIGHT = 1.5  # most real turns are small: the model's prior leans to "no escalation"
TERM_WEIGHT = 0.15  # each routing term of the intelligent KG is a weak positive example
# Everyday turns that carry no reasoning request, in the bundled languages: the labelled sets hold few such plain
# turns (they are mostly traps), and without them a short unseen text scores at the prior. Written for this
# script, not taken from either labelled set.
EVERYDAY = """yes | no | ok | ok do it | go ahead | continue | keep going | carry on | thanks | thank you | looks good
| perfect, commit it | push it | run the tests | run the linter | rerun the failing test | show me the diff
| list the files | what time is it | say hello | hi | what's in this folder | open the readme | print the config
| revert that | undo the last change | try again | stop | wait | yes please | no, the other one | sounds good
| format the file | sort the imports | bump the version | add a newline at the end | remove the unused import
| fix the indentation | update the lockfile | install the dependencies | start the dev server | build it
| what does this flag do | where is the config file | which node version do we use | show the last commit
| ja | nein | weiter | danke | mach weiter | führe die tests aus | oui | non | merci | continue comme ça
| lance les tests | sí | gracias | sigue | ejecuta los tests | sim | obrigado | continua | roda os testes
| 好的 | 继续 | 谢谢 | 运行测试 | はい | 続けて | ありがとう | テストを実行して"""


def anchors(kg) -> list[tuple[str, int, float]]:
    """(text, label, weight): the everyday turns as negatives, the KG's routing terms as weak positives."""
    out = [(t.strip(), 0, 1.0) for t in EVERYDAY.split("|") if t.strip()]
    for c in kg.concepts.values():
        if not c.absorber:
            out += [(term, 1, TERM_WEIGHT) for term in c.terms]
    return out
L2 = (1e-4, 1e-3, 3e-3)
EPOCHS = 40


def tune_rows() -> list[dict]:
    rows = []
    for path in SETS:
        rows += [r for r in evaluate.load(path) if r["split"] == "tune" and r["profile"] == "intelligent"]
    return sorted(rows, key=lambda r: r["id"])


def vectorise(text: str, bits: int) -> dict[int, float]:
    idx, _names = intent.features(intent.prepare(text), bits)
    if not idx:
        return {}
    inv = 1.0 / math.sqrt(len(idx) + intent.SHRINK)
    return {i: c * inv for i, c in Counter(idx).items()}


def fit(xs: list[dict[int, float]], ys: list[int], l2: float, seed: int = 0,
        weights: list[float] | None = None) -> tuple[float, dict[int, float]]:
    """AdaGrad on the weighted logistic loss + l2/2 |w|^2; returns (bias, sparse weights)."""
    sw = weights or [1.0] * len(xs)
    w: dict[int, float] = {}
    g2: dict[int, float] = {}
    b, gb2, lr = 0.0, 1e-8, 0.5
    order = list(range(len(xs)))
    rnd = random.Random(seed)
    for _ in range(EPOCHS):
        rnd.shuffle(order)
        for k in order:
            x, y = xs[k], ys[k]
            z = b + sum(w.get(i, 0.0) * v for i, v in x.items())
            err = (intent._sigmoid(z) - y) * sw[k] * (1.0 if y else NEG_WEIGHT)
            gb2 += err * err
            b -= lr * err / math.sqrt(gb2)
            for i, v in x.items():
                g = err * v + l2 * w.get(i, 0.0)
                g2[i] = g2.get(i, 1e-8) + g * g
                w[i] = w.get(i, 0.0) - lr * g / math.sqrt(g2[i])
    return b, w


def predict(model: tuple[float, dict[int, float]], x: dict[int, float]) -> float:
    b, w = model
    return intent._sigmoid(b + sum(w.get(i, 0.0) * v for i, v in x.items()))


def folds(rows: list[dict]) -> list[int]:
    """Stratified by (set, label): the k-th row of each group goes to fold k % FOLDS."""
    seen: Counter = Counter()
    out = []
    for r in rows:
        key = (r["id"][0], r["label"])
        out.append(seen[key] % FOLDS)
        seen[key] += 1
    return out


def out_of_fold(xs, ys, fold_of, l2: float, extra) -> list[float]:
    """Every tune row scored by a model trained on the other folds (plus the anchors ``extra``)."""
    scores = [0.0] * len(xs)
    ax, ay, aw = extra
    for f in range(FOLDS):
        train = [k for k in range(len(xs)) if fold_of[k] != f]
        model = fit([xs[k] for k in train] + ax, [ys[k] for k in train] + ay, l2,
                    weights=[1.0] * len(train) + aw)
        for k in range(len(xs)):
            if fold_of[k] == f:
                scores[k] = predict(model, xs[k])
    return scores


def combined(graph: list[bool], scores: list[float], ys: list[int], words: list[int], t: float,
             v: float) -> tuple[float, float, int]:
    tp = fp = fn = 0
    for g, s, y, n in zip(graph, scores, ys, words, strict=True):
        vetoed = s < v and n >= intent.VETO_MIN_WORDS
        esc = (g and not vetoed) or (not g and s >= t and n >= intent.INTENT_MIN_WORDS)
        tp += esc and y
        fp += esc and not y
        fn += (not esc) and y
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, fp


def choose(scores: list[float], ys: list[int], words: list[int]) -> tuple[float, float]:
    """(threshold, veto) from out-of-fold scores alone — the graph was grown on these same rows, so its decisions
    here are optimistic and must not set the model's operating points. Threshold: the lowest at which the model on
    its own escalates with precision >= 0.95 on requests long enough for it to act on (the intent branch must be
    as precise as the bar). Veto: the highest
    below which no row that deserves escalation falls, among rows long enough for the veto to apply."""
    t = 0.95
    for ti in range(38, 11, -1):  # 0.950 down to 0.300
        cand = ti * 0.025
        acts = [(s >= cand and n >= intent.INTENT_MIN_WORDS, y) for s, y, n in zip(scores, ys, words, strict=True)]
        tp = sum(a and y for a, y in acts)
        fp = sum(a and not y for a, y in acts)
        if tp + fp and tp / (tp + fp) >= 0.95:
            t = cand
        else:
            break
    v = 0.0
    for vi in range(1, 31):  # 0.01 .. 0.30
        rows = zip(scores, ys, words, strict=True)
        if any(s < vi * 0.01 and y and n >= intent.VETO_MIN_WORDS for s, y, n in rows):
            break
        v = vi * 0.01
    return t, v


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bits", type=int, default=18)
    ap.add_argument("--out", type=Path, default=intent.MODEL_FILE)
    ap.add_argument("--check", action="store_true", help="report only, do not write the model")
    args = ap.parse_args()
    rows = tune_rows()
    xs = [vectorise(r["text"], args.bits) for r in rows]
    ys = [int(r["label"] != evaluate.NONE) for r in rows]
    cfg, _ = config.load(strict=False)
    kg = routing.compile_profiles(cfg)["intelligent"].kg
    graph = [kg.match(r["text"])[0] is not None for r in rows]
    fold_of = folds(rows)
    words = [len(intent._WORDS.findall(intent.prepare(r["text"]))) for r in rows]
    extra_rows = anchors(kg)
    extra = ([vectorise(t, args.bits) for t, _, _ in extra_rows], [y for _, y, _ in extra_rows],
             [w for _, _, w in extra_rows])
    print(f"{len(rows)} tune rows ({sum(ys)} escalate) + {len(extra_rows)} anchors, {args.bits} bits",
          file=sys.stderr)
    best = None
    for l2 in L2:
        scores = out_of_fold(xs, ys, fold_of, l2, extra)
        loss = -sum(math.log(max(1e-9, s if y else 1 - s)) for s, y in zip(scores, ys, strict=True)) / len(ys)
        t, v = choose(scores, ys, words)
        p, r, fp = combined(graph, scores, ys, words, t, v)
        print(f"l2={l2:g}: out-of-fold log-loss {loss:.3f}; threshold {t:.3f}, veto {v:.2f}; with the graph "
              f"(optimistic: grown on these rows) P {p:.3f} R {r:.3f} ({fp} fp)", file=sys.stderr)
        if best is None or loss < best[0]:
            best = (loss, l2, t, v)
    assert best is not None
    _loss, l2, t, v = best
    bias, w = fit(xs + extra[0], ys + extra[1], l2, weights=[1.0] * len(xs) + extra[2])
    dense = [0.0] * (1 << args.bits)
    for i, x in w.items():
        dense[i] = x
    print(f"chosen: l2={l2:g}; profiles/intelligent.toml [routing] intent_threshold = {t:.3f}, "
          f"intent_veto = {v:.2f}", file=sys.stderr)
    if not args.check:
        text = intent.dumps(args.bits, bias, dense, f"tune halves of prompts.jsonl and blind.jsonl ({len(rows)} "
                                                   f"rows, intelligent profile), l2={l2:g}, {EPOCHS} epochs")
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out} ({len(text.encode())} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
