"""The upstream status -> (our status, error type) table, and the OpenAI-surface error body."""

from __future__ import annotations

import pytest

from llmproxy.errors import (
    InvalidRequest,
    RequestTooLarge,
    UpstreamError,
    from_openai_error,
    from_upstream_status,
    is_context_overflow,
)

# upstream status -> what the client gets (the table in docs/providers.md, "Errors")
TABLE = [
    (400, 400, "invalid_request_error"),
    (401, 502, "api_error"),  # the proxy's upstream key was refused: not the client's key
    (402, 402, "billing_error"),
    (403, 403, "permission_error"),
    (404, 404, "not_found_error"),
    (408, 504, "timeout_error"),
    (409, 409, "api_error"),
    (410, 404, "not_found_error"),
    (413, 413, "request_too_large"),
    (415, 400, "invalid_request_error"),
    (422, 400, "invalid_request_error"),
    (429, 429, "rate_limit_error"),
    (500, 500, "api_error"),
    (501, 502, "api_error"),
    (502, 500, "api_error"),
    (503, 529, "overloaded_error"),
    (504, 504, "timeout_error"),
    (520, 502, "api_error"),
    (524, 504, "timeout_error"),
    (529, 529, "overloaded_error"),
]


@pytest.mark.parametrize("upstream,status,kind", TABLE, ids=[str(t[0]) for t in TABLE])
def test_status_table(upstream, status, kind):
    err = from_upstream_status(upstream, "boom", "prov", retry_after="3")
    assert (err.status, err.error_type) == (status, kind)
    assert err.body("req_1")["error"]["type"] == kind and err.message.startswith("prov")


def test_retry_after_travels_and_fallback_rules():
    assert from_upstream_status(429, "slow down", "p", retry_after="7").retry_after == "7"
    assert from_upstream_status(404, "no such model", "p").retryable  # the next target may have it
    assert not from_upstream_status(413, "too big", "p").retryable
    assert not from_upstream_status(400, "bad", "p").retryable
    assert from_upstream_status(529, "busy", "p").retryable


def test_anthropic_413_stays_413_and_overflow_stays_400():
    big = from_upstream_status(413, "Request exceeds the maximum allowed number of bytes.", "anthropic")
    assert isinstance(big, RequestTooLarge) and big.status == 413
    assert not is_context_overflow(big)
    long = from_upstream_status(400, "prompt is too long: 215000 tokens > 200000 maximum", "anthropic")
    assert (long.status, long.error_type) == (400, "invalid_request_error") and is_context_overflow(long)


@pytest.mark.parametrize("status,message,code", [
    (400, "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
     "context_length_exceeded"),
    (400, "Please reduce the length of the messages or completion.", "context_length_exceeded"),
    (413, "This model's maximum context length is 65536 tokens.", None),
    (400, "The number of tokens to keep from the initial prompt is greater than the context length", None),
])
def test_openai_kind_context_overflow_is_prompt_too_long(status, message, code):
    err = from_openai_error(status, message, code, "oai")
    assert isinstance(err, InvalidRequest) and err.status == 400
    assert "prompt is too long" in err.message and message in err.message


def test_openai_kind_413_is_request_too_large():
    err = from_openai_error(413, "Request Entity Too Large", None, "oai")
    assert (err.status, err.error_type) == (413, "request_too_large")
    tpm = from_openai_error(413, "Request too large for model `m` on tokens per minute (TPM): Limit 6000, "
                                 "Requested 9000", "rate_limit_exceeded", "groq")
    assert tpm.status == 413


def test_openai_surface_bodies():
    overflow = from_upstream_status(400, "prompt is too long: 300000 tokens > 200000 maximum", "anthropic")
    assert overflow.openai_body() == {"error": {"message": overflow.message, "type": "invalid_request_error",
                                                "param": "messages", "code": "context_length_exceeded"}}
    assert from_upstream_status(413, "x", "p").openai_body()["error"]["code"] == "request_too_large"
    assert from_upstream_status(429, "x", "p").openai_body()["error"]["code"] == "rate_limit_exceeded"
    assert from_upstream_status(404, "x", "p").openai_body()["error"]["code"] == "model_not_found"
    plain = UpstreamError("p: broke")
    assert plain.openai_body() == {"error": {"message": "p: broke", "type": "api_error", "param": None,
                                             "code": None}}
