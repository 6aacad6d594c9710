"""One error family. Each error knows its HTTP status and its Anthropic error type; it is rendered once,
at the server boundary (JSON body, or an SSE ``event: error`` frame once a stream has begun)."""

from __future__ import annotations

from llmproxy.redact import redact_text


class ProxyError(Exception):
    status = 500
    error_type = "api_error"
    #: whether the dispatcher may try the next target in the chain after this error
    retryable = False
    #: what ``x-should-retry`` tells the client; None: the status decides (5xx, 429 and 408 are retried)
    should_retry: bool | None = None
    #: the upstream's HTTP status when an upstream answered with an error, else None
    upstream_status: int | None = None

    def __init__(self, message: str, *, status: int | None = None, retry_after: str | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.retry_after = retry_after

    def body(self, request_id: str | None = None) -> dict:
        out: dict = {"type": "error", "error": {"type": self.error_type, "message": self.message}}
        if request_id:
            out["request_id"] = request_id
        return out

    # OpenAI's error shape for the /v1/chat/completions surface
    def openai_body(self) -> dict:
        """``{"error": {message, type, param, code}}``. A context overflow carries OpenAI's own code,
        ``context_length_exceeded``, so OpenAI-style clients recognise it (they branch on the code)."""
        if is_context_overflow(self):
            return {"error": {"message": self.message, "type": "invalid_request_error", "param": "messages",
                              "code": "context_length_exceeded"}}
        return {"error": {"message": self.message, "type": self.error_type, "param": None,
                          "code": OPENAI_CODES.get(self.status)}}


class InvalidRequest(ProxyError):
    status, error_type = 400, "invalid_request_error"


class AuthenticationFailed(ProxyError):
    status, error_type = 401, "authentication_error"


class BillingError(ProxyError):
    status, error_type = 402, "billing_error"


class PermissionDenied(ProxyError):
    status, error_type = 403, "permission_error"


class NotFound(ProxyError):
    status, error_type = 404, "not_found_error"


class RequestTooLarge(ProxyError):
    status, error_type = 413, "request_too_large"


class RateLimited(ProxyError):
    status, error_type, retryable = 429, "rate_limit_error", True


class UpstreamError(ProxyError):
    """The upstream answered 5xx, or could not be reached."""

    status, error_type, retryable = 502, "api_error", True


class UpstreamTimeout(ProxyError):
    status, error_type, retryable = 504, "timeout_error", True


class Overloaded(ProxyError):
    status, error_type, retryable = 529, "overloaded_error", True


class Conflict(ProxyError):
    """An upstream 409 (a concurrent change). The API has no error type of its own for it; the status is kept
    so clients retry it as the SDKs do."""

    status, error_type, retryable = 409, "api_error", True


class StoreDown(ProxyError):
    """The batch and file store (its database) cannot be reached: 503, worth retrying. Made from the store's
    ``StoreUnavailable``, whose message names the store without its password."""

    status, error_type, retryable = 503, "api_error", True

    @classmethod
    def of(cls, exc: Exception) -> StoreDown:
        return cls(f"{exc}; retry later")


#: upstream status -> our error (docs/providers.md "Errors" has the whole table, with the reasons)
_BY_STATUS: dict[int, type[ProxyError]] = {
    400: InvalidRequest, 401: AuthenticationFailed, 402: BillingError, 403: PermissionDenied,
    404: NotFound, 408: UpstreamTimeout, 409: Conflict, 410: NotFound, 413: RequestTooLarge,
    422: InvalidRequest, 429: RateLimited, 503: Overloaded, 504: UpstreamTimeout, 524: UpstreamTimeout,
    529: Overloaded,
}

#: ``error.code`` on the OpenAI surface, by our status (a context overflow has its own, see ``openai_body``)
OPENAI_CODES: dict[int, str] = {400: "invalid_request_error", 401: "invalid_api_key", 404: "model_not_found",
                                 413: "request_too_large", 429: "rate_limit_exceeded"}

#: phrases upstreams use when the prompt does not fit the model's context window (not a byte-size limit)
_OVERFLOW = ("prompt is too long", "context_length_exceeded", "maximum context length", "context length",
             "context window", "too many input tokens", "input is too long")


def is_context_overflow(err: ProxyError | str) -> bool:
    """Whether an error (or an upstream message) says the prompt does not fit the context window."""
    if isinstance(err, ProxyError):
        if err.status != 400:
            return False
        err = err.message
    text = err.lower()
    return any(p in text for p in _OVERFLOW)


def from_upstream_status(status: int, message: str, provider: str, retry_after: str | None = None) -> ProxyError:
    """Map an upstream HTTP error to our family (docs/anthropic-api.md §4, docs/providers.md). The message names the provider;
    anything key-shaped in the upstream's text (OpenAI echoes part of a rejected key) is redacted."""
    message = redact_text(message)
    if status == 401:
        # the proxy's own upstream key was refused: not the client's fault, so not a 401 for the client
        err = UpstreamError(f"{provider}: upstream rejected the configured credentials ({message})", status=502)
        err.should_retry, err.upstream_status = False, status  # retrying will not fix a key: say so at once
        return err
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = UpstreamError if status >= 500 else InvalidRequest
    err = cls(f"{provider}: {message}", retry_after=retry_after)
    if cls is UpstreamError:
        err.status = 500 if status in (500, 502) else 502
    err.upstream_status = status
    if status == 404:
        err.retryable = True  # this provider lacks the model or route (e.g. an Ollama model not pulled): try the next
    return err


def from_openai_error(status: int, message: str, code: str | None, provider: str,
                      retry_after: str | None = None) -> ProxyError:
    """An OpenAI-kind upstream's error answer (status, ``error.message``, ``error.code``) as ours.

    A context overflow is a 400 "prompt is too long: …" whatever status carried it (OpenAI answers 400
    ``context_length_exceeded``; some servers use 413 for it), because that is what Claude Code's compaction
    looks for. Any other 413 is a size limit and stays 413 ``request_too_large``."""
    if code == "context_length_exceeded" or is_context_overflow(message):
        if not message.lower().startswith("prompt is too long"):
            message = f"prompt is too long: {message}"
        status = 400
    return from_upstream_status(status, message, provider, retry_after=retry_after)
