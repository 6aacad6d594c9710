"""Question forms and intent phrases are knowledge-graph terms: consequence, alternative, limit, guarantee and
cause questions, requests to suggest or brainstorm an approach, in the bundled languages — and the decision names
the phrase that fired (what route-test prints)."""

from __future__ import annotations

import pytest

from llmproxy import config, routing
from tests.routing import shapes as S

CFG, _ = config.load(strict=False)
PS = routing.compile_profiles(CFG)

CASES = [
    # (text, concept, the phrase the reason names)
    ("what happens to open websockets if the gateway restarts mid-deploy?", "thinking", "what happens to"),
    ("what would happen if the clock jumps back an hour", "thinking", "what would happen"),
    ("was passiert mit offenen Bestellungen, wenn der Dienst neu startet?", "thinking", "was passiert"),
    ("que se passerait-il si la file se remplit ?", "thinking", "que se passerait-il"),
    ("¿qué pasaría si dos réplicas escriben a la vez?", "thinking", "qué pasaría"),
    ("o que acontece com as sessões se o redis cair?", "thinking", "o que acontece"),
    ("如果主库宕机，正在写的数据会怎样？", "thinking", "会怎样"),
    ("キャッシュが切れたらどうなる？", "thinking", "どうなる"),
    ("which of these two schemas would you pick for audit data", "tradeoffs", "which of these"),
    ("row-level locks or advisory locks, which one holds up under contention?", "tradeoffs", "which one holds up"),
    ("lohnt es sich, dafür eine eigene Queue zu betreiben?", "tradeoffs", "lohnt es sich"),
    ("vale a pena trocar o ORM agora?", "tradeoffs", "vale a pena"),
    ("can this be done faster than the nested scan?", "proofs", "can this be done faster"),
    ("is there anything better than O(n^2) for this pairing step", "proofs", "better than o(n"),
    ("how do we make sure a webhook is never delivered twice", "proofs", "how do we make sure"),
    ("wie stellen wir sicher, dass jeder Job genau einmal läuft?", "proofs", "wie stellen wir sicher"),
    ("comment s'assurer que le solde reste positif ?", "proofs", "comment s'assurer"),
    ("如何保证消息不会丢？", "proofs", "如何保证"),
    ("work out an algorithm to pack the shipments and justify it", "proofs", "work out an algorithm"),
    ("why would the retry fire after the request already succeeded", "debugging", "why would"),
    ("what could cause the socket to close right after the handshake?", "debugging", "what could cause"),
    ("warum bleibt der Consumer nach dem Rebalance hängen?", "debugging", "warum"),
    ("pourquoi le worker consomme deux fois le même message ?", "debugging", "pourquoi"),
    ("为什么这个请求在代理后面超时？", "debugging", "为什么"),
    ("brainstorm an approach for per-tenant rate limits", "design", "brainstorm"),
    ("how would you lay out the modules so billing stops importing mail", "design", "how would you"),
    ("wie würdest du die Rechte pro Mandant modellieren?", "design", "wie würdest du"),
    ("walk me through moving the sessions table to its own database", "planning", "walk me through"),
    ("in what order should we retire the old endpoints", "planning", "in what order"),
    ("par où commencer pour sortir de cette vieille stack ?", "planning", "par où commencer"),
    ("what's really going on under the hood when the pool resizes", "deep-dive", "what's really going on"),
]


@pytest.mark.parametrize("text,concept,phrase", CASES)
def test_question_forms_fire_and_name_the_phrase(text, concept, phrase):
    d = routing.decide(S.main_turn(text), PS["intelligent"], CFG, PS)
    assert d.scenario == "keyword", d.reasons
    hit = [m for m in d.matches if not m.suppressed and m.concept != "casual"]
    assert any(m.term == phrase and m.concept == concept for m in hit), hit
    assert any(repr(m.term) in r for m in hit for r in d.reasons)


@pytest.mark.parametrize("text", [
    "justify-content: center on the toolbar please",  # CSS, not a request to justify
    "fix the proof-of-concept script's shebang",
    "je pense qu'il manque une virgule, corrige-la",
])
def test_lookalikes_stay_default(text):
    d = routing.decide(S.main_turn(text), PS["intelligent"], CFG, PS)
    assert d.scenario == "default", d.reasons
