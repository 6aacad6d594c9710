"""Client keys kept in the store (issue 27): what a key is, how its secret is made and hashed, and the server
secret that keys the hash.

A key's secret (``llmp_`` + 32 url-safe characters) is shown once, when it is created or rotated. The store
keeps only ``HMAC-SHA256(server secret, secret)``; the server secret lives in ``LLMPROXY_HOME/keys.secret``
(0600, made on first use), never in the database, so a stolen database alone yields no key. Every instance
of a fleet needs the same ``keys.secret`` (docs/operations.md "Keys").

Names are unique among live (not revoked) keys: rotating a key revokes its row and inserts a new one with a
new id, the same name and limits, and ``rotated_from`` naming the old id.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import stat
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

SECRET_PREFIX = "llmp_"
SECRET_FILE = "keys.secret"
PERIODS = ("day", "week", "month")
#: what a key's name may be: it is shown in logs, errors and metrics labels
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
#: the fields ``update_key`` may change
UPDATABLE = ("profiles", "budget_usd", "budget_period", "rpm", "tpm", "expires_at")
KEY_COLS = ("id, name, profiles, budget_usd, budget_period, rpm, tpm, expires_at, created_at, revoked_at, "
            "rotated_from")


class KeyNameTaken(ValueError):
    """A live key already has this name."""


@dataclass
class ApiKey:
    id: str
    name: str
    created_at: str                          # RFC 3339
    profiles: tuple[str, ...] = ()           # empty: every profile
    budget_usd: float | None = None
    budget_period: str | None = None         # day | week | month
    rpm: int | None = None
    tpm: int | None = None
    expires_at: str | None = None            # RFC 3339
    revoked_at: str | None = None
    rotated_from: str | None = None

    def state(self, now: datetime | None = None) -> str:
        """``active``, ``revoked`` or ``expired``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and parse_time(self.expires_at) <= (now or datetime.now(UTC)):
            return "expired"
        return "active"

    def to_json(self) -> dict:
        """Everything about the key but its secret (the store never has it)."""
        out = asdict(self)
        out["profiles"] = list(self.profiles)
        out["state"] = self.state()
        return out


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(24)  # 24 random bytes: 32 url-safe characters


def key_hash(server_secret: bytes, secret: str) -> str:
    """The keyed hash stored for a secret (hex). A header that is not UTF-8 hashes as the bytes it was."""
    return hmac.new(server_secret, secret.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def load_server_secret(home: Path) -> bytes:
    """``home/keys.secret``, made (32 random bytes, hex, 0600) when absent. Several processes may make it at
    once: it is written aside and linked into place, so every one of them ends with the same secret.
    Refuses a file others may read."""
    path = home / SECRET_FILE
    if not path.exists():
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = home / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # atomic, and never over one another process made first
        tmp.unlink()
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PermissionError(f"{path} is readable by others (mode {mode:o}); chmod 600 {path}")
    text = path.read_text().strip()
    if len(text) < 32:
        raise ValueError(f"{path} holds no usable secret (expected 64 hex characters)")
    return text.encode()


def parse_time(text: str) -> datetime:
    """An RFC 3339 time or a date (midnight UTC); naive times are UTC."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def parse_expires(text: str) -> str:
    """``2027-01-01`` or an ISO time, as the RFC 3339 UTC time stored; ValueError naming the form."""
    try:
        t = parse_time(text.strip())
    except ValueError:
        raise ValueError(f"expires: {text!r} is not a date (2027-01-01) or an ISO time") from None
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_budget(text: str) -> tuple[float, str]:
    """``50/month`` (also ``$50/month``, ``12.5/day``, ``100/week``) as (dollars, period)."""
    amount, _, period = text.strip().lstrip("$").partition("/")
    try:
        usd = float(amount)
    except ValueError:
        usd = -1.0
    if not usd >= 0 or period not in PERIODS or usd == float("inf"):
        raise ValueError(f"budget: {text!r} is not AMOUNT/PERIOD with PERIOD one of {', '.join(PERIODS)} "
                         "(e.g. 50/month)")
    return usd, period


def parse_profiles(text: str) -> tuple[str, ...]:
    """``intelligent,cheap`` as a tuple; empty: every profile."""
    return tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise ValueError(f"name: {name!r} must be 1-64 letters, digits, '_', '.', '@' or '-', starting with a "
                         "letter or digit")
    return name


def key_row(row: tuple, profiles: tuple[str, ...]) -> ApiKey:
    """A row in ``KEY_COLS`` order (``profiles`` already decoded) as an ApiKey."""
    return ApiKey(id=row[0], name=row[1], profiles=profiles, budget_usd=row[3], budget_period=row[4], rpm=row[5],
                  tpm=row[6], expires_at=row[7], created_at=row[8], revoked_at=row[9], rotated_from=row[10])


