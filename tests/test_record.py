"""The typed request record writes the JSONL keys ``logs``, ``stats`` and the dashboard read: table-driven."""

from __future__ import annotations

import pytest

from llmproxy.config import Target
from llmproxy.routing import Decision
from llmproxy.server.request.record import RequestRecord

T = Target("anthropic", "claude-sonnet-4-5")
DECISION = Decision(profile="fast", scenario="default", chain=(T,), reasons=["no scenario fired"])


def rec(**kw) -> RequestRecord:
    return RequestRecord(request_id="req_1", endpoint=kw.pop("endpoint", "messages"), client={"address": "127.0.0.1"},
                         time="2026-11-29T20:00:00.000+00:00", **kw)


@pytest.mark.parametrize("record, present, absent", [
    # nothing dispatched: only what is known
    (rec(status=400, error="model: Field required"), {"status": 400, "error": "model: Field required"},
     ("target", "cost_usd", "attempts", "decision", "usage", "client_disconnected")),
    # served: the target, whether simulated, and the cost even when unknown (None, never 0)
    (rec(decision=DECISION, target=T, simulated=False, attempts=[], status=200),
     {"target": "anthropic/claude-sonnet-4-5", "simulated": False, "cost_usd": None, "attempts": []}, ("error",)),
    # count_tokens has no cost
    (rec(endpoint="count_tokens", decision=DECISION, target=T, simulated=True, tokens_from="estimate"),
     {"simulated": True, "tokens_from": "estimate"}, ("cost_usd",)),
    # a client that went away, and what extra a caller added (batch items, the worker)
    (rec(client_disconnected=True, status=499, extra={"batch_id": "msgbatch_1", "worker": 2}),
     {"client_disconnected": True, "batch_id": "msgbatch_1", "worker": 2}, ("target",)),
])
def test_to_json_keys(record, present, absent):
    out = record.to_json()
    assert out["request_id"] == "req_1" and out["client"] == {"address": "127.0.0.1"} and "time" in out
    for key, val in present.items():
        assert out[key] == val, key
    for key in absent:
        assert key not in out, key


def test_the_decision_is_written_whole():
    out = rec(decision=DECISION, target=T).to_json()
    assert out["decision"]["scenario"] == "default" and out["decision"]["chain"] == [
        {"provider": "anthropic", "model": "claude-sonnet-4-5"}] and out["decision"]["reasons"] == ["no scenario fired"]


def test_time_since_start_is_in_milliseconds():
    r = rec()
    assert r.ms_since_start(r.t0 + 0.25) == 250.0
