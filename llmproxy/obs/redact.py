"""One redaction function for everything that leaves the process as text (log lines, console, errors).

Header/field names that hold credentials are masked whole; inside strings, bearer tokens, provider key
shapes and ``key=`` / ``token=`` URL parameters are masked.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "[REDACTED]"
SECRET_NAMES = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "api_key", "apikey", "x-goog-api-key",
    "access_token", "refresh_token", "client_secret", "password", "secret", "token", "cookie", "set-cookie",
})
_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 " + MASK),
    (re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_-]{8,}"), MASK),            # sk-..., sk-ant-..., sk-or-v1-...
    (re.compile(r"\b(?:gsk|csk|xai|AIza)[_-]?[A-Za-z0-9_-]{12,}"), MASK),  # groq, cerebras, xai, google
    (re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access_token|sig)=)[^&\s\"']+"), r"\1" + MASK),
]


# one cheap scan decides whether the four substitutions are needed at all
_TRIGGER = re.compile(r"(?i)bearer|basic|(?:sk|rk|pk)-|gsk|csk|xai|aiza|[?&](?:api[_-]?key|key|token|access_token|sig)=")


def redact_text(text: str) -> str:
    if len(text) < 8 or not _TRIGGER.search(text):
        return text
    for pat, repl in _PATTERNS:
        text = pat.sub(repl, text)
    return text


def redact(obj: Any, *, extra_secrets: tuple[str, ...] = ()) -> Any:
    """A redacted deep copy of ``obj`` (dicts, lists, strings). Known secret values are masked anywhere."""
    if isinstance(obj, dict):
        return {k: (MASK if isinstance(k, str) and k.lower() in SECRET_NAMES and v else
                    redact(v, extra_secrets=extra_secrets)) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact(v, extra_secrets=extra_secrets) for v in obj]
    if isinstance(obj, str):
        out = redact_text(obj)
        for s in extra_secrets:
            if s and len(s) >= 6 and s in out:
                out = out.replace(s, MASK)
        return out
    return obj
