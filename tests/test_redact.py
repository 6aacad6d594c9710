import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from llmproxy.redact import _LINE_TOKENS, MASK, has_line_token, needs_redaction, redact, redact_text


def test_every_secret_form():
    cases = {
        "Authorization: Bearer abcDEF123456789": "abcDEF123456789",
        "x sk-ant-api03-AbCdEfGh12345678 y": "sk-ant-api03-AbCdEfGh12345678",
        "sk-or-v1-0123456789abcdef": "sk-or-v1-0123456789abcdef",
        "sk-proj-ABCDEFGH12345678": "sk-proj-ABCDEFGH12345678",
        "gsk_ABCDEFGHIJKLMNOP1234": "gsk_ABCDEFGHIJKLMNOP1234",
        "csk-abcdefghijklmnop1234": "csk-abcdefghijklmnop1234",
        "AIzaSyA1234567890abcdefgh": "AIzaSyA1234567890abcdefgh",
        "https://h/x?key=SECRETVALUE&a=1": "SECRETVALUE",
        "https://h/x?api_key=SECRETVALUE": "SECRETVALUE",
        "https://h/x?a=1&access_token=SECRETVALUE": "SECRETVALUE",
    }
    for text, secret in cases.items():
        out = redact_text(text)
        assert secret not in out and MASK in out, text
    assert redact_text("https://h/x?a=1") == "https://h/x?a=1"
    assert redact_text("plain words, planet, skip-list") == "plain words, planet, skip-list"


def test_structures_and_known_values():
    obj = {"headers": {"X-Api-Key": "anything-at-all", "Authorization": "Bearer z", "user-agent": "ua"},
           "nested": [{"api_key": "v"}, "my custom-secret-value here"], "n": 3}
    out = redact(obj, extra_secrets=("custom-secret-value",))
    assert out["headers"] == {"X-Api-Key": MASK, "Authorization": MASK, "user-agent": "ua"}
    assert out["nested"][0] == {"api_key": MASK} and "custom-secret-value" not in out["nested"][1]
    assert out["n"] == 3 and obj["headers"]["X-Api-Key"] == "anything-at-all"  # a copy; input untouched


# ---------------------------------------------------------------- needs_redaction: the log line's fast path

_TRICKY = ["Bearer abcdefghijkl", "baſic abcdefghij", "sk-ant-api03-abcdefghijkl", "ſk-abcdefghijkl",
           "gsk_abcdefghijklmnop", "https://x.test/?key=abc&x=1", "?KEY=abc", "the task-list is long",
           "my-secret-value", "quote \" and \\ back", "ünïcödé", "AIzaSyabcdefghijklmn", "x", ""]
_KEYS = st.sampled_from(["a", "b", "Authorization", "x-api-key", "token", "password", "user", "İd", "Key"])
_LEAVES = st.one_of(st.sampled_from(_TRICKY), st.text(max_size=30), st.integers(-2**63, 2**63 - 1), st.none(),
                   st.booleans())
_RECORDS = st.recursive(_LEAVES, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_KEYS, kids, max_size=4),
                        max_leaves=20)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(_KEYS, _RECORDS, max_size=6), st.sampled_from([(), ("my-secret-value",), ("a\"b\\cdefg",)]))
def test_a_line_that_needs_no_redaction_is_what_redact_would_give(rec, secrets):
    if not needs_redaction(orjson.dumps(rec), secrets):
        assert redact(rec, extra_secrets=secrets) == rec


_BYTES = st.binary(max_size=60) | st.lists(st.sampled_from([*_LINE_TOKENS, b"x", b'"', b"\xc4", b"K", b"-", b"="]),
                                           max_size=8).map(b"".join)


@settings(max_examples=2000, deadline=None)
@given(_BYTES, _BYTES, st.sampled_from(_LINE_TOKENS + (b"",)), st.booleans())
def test_one_scan_finds_exactly_what_a_scan_per_token_finds(head, tail, token, upper):
    """The automaton is an optimisation of ``any(token in line.lower() ...)``: the same answer on any bytes,
    a token cut or split across the edges of others included."""
    line = head + (token.upper() if upper else token) + tail
    assert has_line_token(line) == any(tok in line.lower() for tok in _LINE_TOKENS)
