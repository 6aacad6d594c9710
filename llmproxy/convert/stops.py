"""Stop sequences enforced on streamed text (an upstream takes at most four of them): where the first one
ends, and how much trailing text could still be the start of one. Pure."""

from __future__ import annotations


def first_stop(text: str, stop_sequences: tuple[str, ...]) -> tuple[int, str] | None:
    """(start, sequence) of the stop sequence whose first occurrence in ``text`` ends first (the one a model
    generating ``text`` would have hit first; at the same end, the longer one), or None."""
    best: tuple[int, int, str] | None = None
    for seq in stop_sequences:
        i = text.find(seq) if seq else -1
        if i >= 0 and (best is None or (i + len(seq), i) < (best[0], best[1])):
            best = (i + len(seq), i, seq)
    return (best[1], best[2]) if best else None


def held_back(text: str, stop_sequences: tuple[str, ...]) -> int:
    """How many trailing characters of ``text`` could still be the start of a stop sequence."""
    keep = 0
    for seq in stop_sequences:
        for k in range(min(len(seq) - 1, len(text)), keep, -1):
            if text.endswith(seq[:k]):
                keep = k
                break
    return keep
