"""What the dashboard's feed says about a request, and its bytes: the views of a record (feed, start,
compact), the log's redaction done on the serialised line, and the SSE messages of a batch of events."""

from __future__ import annotations

import orjson

from llmproxy.obs.hub import Event
from llmproxy.redact import MASK, SECRET_NAMES, redact, redact_text

BODY_KEYS = ("request_body", "response_body")


def feed_view(data: dict) -> dict:
    """A log record as the feed sends it: without bodies, saying whether the log has them."""
    out = {k: v for k, v in data.items() if k not in BODY_KEYS}
    if any(k in data for k in BODY_KEYS):
        out["bodies"] = True
    return out


def compact_view(rec: dict) -> dict:
    """A logged record trimmed for the charts and the first rows (the detail is fetched on a click)."""
    out = {k: rec[k] for k in ("time", "request_id", "endpoint", "profile", "requested_model", "stream", "status",
                               "error", "stream_error", "target", "simulated", "usage", "ttft_ms", "duration_ms",
                               "cost_usd", "client_disconnected") if k in rec}
    d = rec.get("decision")
    if isinstance(d, dict):
        out["decision"] = {k: d.get(k) for k in ("scenario", "concept", "target")}
    if isinstance(rec.get("attempts"), list):
        out["attempts"] = [{k: a.get(k) for k in ("target", "status", "retried", "skipped")}
                           for a in rec["attempts"] if isinstance(a, dict)]
    c = rec.get("client")
    if isinstance(c, dict):
        out["client"] = {k: c[k] for k in ("session_id", "agent_id", "user_agent") if k in c}
    if any(k in rec for k in BODY_KEYS):
        out["bodies"] = True
    out["partial"] = True
    return out


_SECRET_KEYS = tuple(f'"{n}":' for n in sorted(SECRET_NAMES))  # as orjson writes a key (no spaces)
#: the literal pieces of everything ``redact_text`` rewrites (lower case); none present: nothing to rewrite
_TRIGGERS = ("bearer", "basic", "sk-", "rk-", "pk-", "gsk", "csk", "xai", "aiza", "key=", "token=", "sig=")


def redacted_json(data: dict, secrets: tuple[str, ...]) -> bytes:
    """``data`` as JSON with the log's redaction applied, done on the serialised text: the same patterns
    (``redact_text``) and known secrets (also in their JSON-escaped form), at a fraction of the cost of a
    redacted deep copy. A field named like a credential, or a substitution that would not leave valid JSON,
    takes the structured path (``redact``) instead."""
    raw = orjson.dumps(data, default=str)
    text = raw.decode()
    low = text.lower()
    if not any(k in low for k in _SECRET_KEYS):
        if any(t in low for t in _TRIGGERS):
            text = redact_text(text)
        for s in secrets:
            if s and len(s) >= 6:
                for form in {s, orjson.dumps(s).decode()[1:-1]}:
                    if form in text:
                        text = text.replace(form, MASK)
        out = text.encode()
        if out is raw or out == raw:
            return raw
        try:
            orjson.loads(out)
            return out
        except orjson.JSONDecodeError:
            pass
    return orjson.dumps(redact(data, extra_secrets=secrets), default=str)


def render_event(ev: Event, secrets: tuple[str, ...], brief: bool = False) -> bytes:
    """One SSE message: ``id``, ``event`` (start | end) and the redacted record as one JSON line. ``brief``:
    a start whose end goes out in the same batch says only which request it is (our own id, time and
    endpoint: nothing to redact)."""
    payload = ev.payload
    if brief:
        body = orjson.dumps({"time": payload["time"], "request_id": payload["request_id"],
                             "endpoint": payload["endpoint"], "phase": "start", "brief": True})
        return b"id: %d\nevent: start\ndata: %s\n\n" % (ev.seq, body)
    try:
        data = payload if ev.kind == "start" else feed_view(payload)
        body = redacted_json({**data, "phase": ev.kind}, secrets)
    except Exception as exc:  # noqa: BLE001 - one odd record must not end the feed
        rid = payload.get("request_id") if isinstance(payload, dict) else None
        body = orjson.dumps({"request_id": rid, "phase": ev.kind, "note": f"not shown: {type(exc).__name__}"})
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (ev.seq, ev.kind.encode(), body)


def render_batch(batch: list[Event], secrets: tuple[str, ...]) -> bytes:
    """The batch's messages; a request that started and ended within the batch gets a brief start (its end
    carries everything), which keeps a busy proxy's feed about half as costly."""
    ended = {ev.payload.get("request_id") for ev in batch
             if ev.kind == "end" and isinstance(ev.payload, dict)} if len(batch) > 1 else set()
    return b"".join(ev.render(lambda e: render_event(
        e, secrets, brief=e.kind == "start" and e.payload.get("request_id") in ended)) for ev in batch)


def sse(kind: str, data: dict) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (kind.encode(), orjson.dumps(data, default=str))
