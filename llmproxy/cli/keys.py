"""``llmproxy keys create|list|show|update|revoke|rotate``: client keys in the store (issue 27). The CLI talks
to the store itself (the one ``[store] url`` or ``$LLMPROXY_DATABASE_URL`` names, else this machine's SQLite
store under ``$LLMPROXY_HOME``), so it works with or without a running daemon; every instance sees a change
within a second (its key cache's TTL). A secret is printed once, on stdout, when a key is created or
rotated: only its keyed hash is stored (``llmproxy/store/keys.py``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer

from llmproxy import paths
from llmproxy.cli.batches import Command
from llmproxy.cli.common import load_lenient
from llmproxy.cli.console import CLIError, err, out
from llmproxy.cli.options import ConfigPaths
from llmproxy.server.request.keylimits import minute_of, period_bounds
from llmproxy.store import Store, StoreUnavailable, new_id, open_store
from llmproxy.store.keys import (
    ApiKey,
    KeyNameTaken,
    check_name,
    key_hash,
    load_server_secret,
    new_secret,
    parse_budget,
    parse_expires,
    parse_profiles,
)
from llmproxy.store.schema import now_iso

T = TypeVar("T")

keys_app = typer.Typer(no_args_is_help=True, help="Client keys: one per person or agent, with allowed profiles and "
                       "limits (stored in the store, only a keyed hash of each secret).")

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
Name = Annotated[str, typer.Argument(metavar="NAME", help="the key's name")]
ProfilesOpt = Annotated[str | None, typer.Option("--profiles", metavar="A,B", help="profiles the key may use (default: all; '' for all)")]
BudgetOpt = Annotated[str | None, typer.Option("--budget", metavar="USD/PERIOD", help="spend limit, e.g. 50/month (day, week, month; 'none' to clear)")]
RpmOpt = Annotated[str | None, typer.Option("--rpm", metavar="N", help="requests per minute ('none' to clear)")]
TpmOpt = Annotated[str | None, typer.Option("--tpm", metavar="N", help="tokens per minute ('none' to clear)")]
ExpiresOpt = Annotated[str | None, typer.Option("--expires", metavar="DATE", help="when it stops working, e.g. 2027-01-01 ('none' to clear)")]


def _with_store(fn: Callable[[Store], Awaitable[T]]) -> T:
    cfg, _problems = load_lenient(ConfigPaths())

    async def run() -> T:
        store = open_store(paths.home(), cfg.store)
        try:
            return await fn(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except KeyNameTaken as exc:
        raise CLIError(f"{exc}; choose another name, or rotate that key") from None
    except (ValueError, PermissionError) as exc:
        raise CLIError(str(exc)) from None
    except StoreUnavailable as exc:  # names the store without its password
        raise CLIError(f"{exc} (llmproxy keys writes to the store directly)") from None


def _server_secret() -> bytes:
    try:
        return load_server_secret(paths.home())
    except (OSError, ValueError) as exc:
        raise CLIError(f"the keys' server secret: {exc}") from None


def _limits(profiles: str | None, budget: str | None, rpm: str | None, tpm: str | None,
            expires: str | None) -> dict[str, Any]:
    """The options given, as ApiKey fields (``none`` clears one); a CLIError naming a bad value."""
    fields: dict[str, Any] = {}
    try:
        if profiles is not None:
            fields["profiles"] = _known_profiles(parse_profiles(profiles))
        if budget is not None:
            fields["budget_usd"], fields["budget_period"] = (None, None) if budget == "none" else parse_budget(budget)
        for name, val in (("rpm", rpm), ("tpm", tpm)):
            if val is not None:
                fields[name] = None if val == "none" else _positive(name, val)
        if expires is not None:
            fields["expires_at"] = None if expires == "none" else parse_expires(expires)
    except ValueError as exc:
        raise CLIError(str(exc), code=2) from None
    return fields


def _positive(name: str, val: str) -> int:
    if not val.isdigit() or int(val) <= 0:
        raise ValueError(f"{name}: {val!r} must be a whole number above 0 (or 'none')")
    return int(val)


def _known_profiles(names: tuple[str, ...]) -> tuple[str, ...]:
    cfg, _problems = load_lenient(ConfigPaths())
    unknown = [n for n in names if n not in cfg.profiles]
    if unknown:
        raise ValueError(f"profiles: unknown {', '.join(map(repr, unknown))}; valid profiles: "
                         f"{', '.join(sorted(cfg.profiles))}")
    return names


def _print_key(key: ApiKey, json_out: bool, extra: dict | None = None) -> None:
    data = {**key.to_json(), **(extra or {})}
    if json_out:
        out.print(json.dumps(data, indent=2), markup=False, soft_wrap=True)
        return
    for k, v in data.items():
        shown = ", ".join(v) or "all" if k == "profiles" else ("-" if v is None else v)
        out.print(f"{k:14} {shown}", markup=False, soft_wrap=True)


def _print_secret(key: ApiKey, secret: str, json_out: bool, verb: str) -> None:
    if json_out:
        out.print(json.dumps({"key": key.to_json(), "secret": secret}, indent=2), markup=False, soft_wrap=True)
    else:
        out.print(secret, markup=False, soft_wrap=True)
    err.print(f"{verb} key {key.name!r} ({key.id}); the secret above is shown once and not stored: hand it to "
              "its user now (ANTHROPIC_AUTH_TOKEN for Claude Code)", markup=False, soft_wrap=True)


def _missing(name: str) -> CLIError:
    return CLIError(f"no key named {name!r} (llmproxy keys list shows them)")


@keys_app.command("create", cls=Command)
def create(name: Annotated[str, typer.Option("--name", metavar="NAME", help="who or what the key is for (unique among live keys)")],
           profiles: ProfilesOpt = None, budget: BudgetOpt = None, rpm: RpmOpt = None, tpm: TpmOpt = None,
           expires: ExpiresOpt = None, json_out: JsonOpt = False) -> None:
    """Create a key; prints its secret once (stdout)."""
    try:
        check_name(name)
    except ValueError as exc:
        raise CLIError(str(exc), code=2) from None
    fields = {k: v for k, v in _limits(profiles, budget, rpm, tpm, expires).items() if v is not None}
    key = ApiKey(id=new_id("key_"), name=name, created_at=now_iso(), **fields)
    secret = new_secret()
    digest = key_hash(_server_secret(), secret)
    _with_store(lambda s: s.create_key(key, digest))
    _print_secret(key, secret, json_out, "created")


@keys_app.command("list", cls=Command)
def list_cmd(all_keys: Annotated[bool, typer.Option("--all", help="revoked keys too")] = False,
             json_out: JsonOpt = False) -> None:
    """Keys, oldest first (live ones unless --all): name, id, state, profiles, limits, expiry."""
    keys = [k for k in _with_store(lambda s: s.list_keys()) if all_keys or k.revoked_at is None]
    if json_out:
        out.print(json.dumps([k.to_json() for k in keys], indent=2), markup=False, soft_wrap=True)
        return
    if not keys:
        out.print("no keys (llmproxy keys create --name NAME)", markup=False)
    for k in keys:
        budget = f"${k.budget_usd:g}/{k.budget_period}" if k.budget_usd is not None else "-"
        out.print(f"{k.name:20} {k.id}  {k.state():8} profiles={','.join(k.profiles) or 'all'} budget={budget} "
                  f"rpm={k.rpm or '-'} tpm={k.tpm or '-'} expires={k.expires_at or '-'}", markup=False, soft_wrap=True)


@keys_app.command("show", cls=Command)
def show(name: Name, json_out: JsonOpt = False) -> None:
    """One key (its live version, else its last revoked one); never its secret. With a budget, its spend this
    period as the usage ledger holds it (every instance's, to their last flush, about a second ago)."""
    key = _with_store(lambda s: s.get_key(name))
    if key is None:
        raise _missing(name)
    extra: dict[str, Any] = {}
    if key.budget_usd is not None and key.budget_period is not None:
        start, end = period_bounds(key.budget_period, datetime.now(UTC))
        spent = _with_store(lambda s: s.key_spend(key.id, minute_of(start), minute_of(end)))
        extra = {"spent_usd": round(spent, 6), "remaining_usd": round(max(0.0, key.budget_usd - spent), 6),
                 "resets_at": end.isoformat().replace("+00:00", "Z")}
    _print_key(key, json_out, extra)


@keys_app.command("update", cls=Command)
def update(name: Name, profiles: ProfilesOpt = None, budget: BudgetOpt = None, rpm: RpmOpt = None,
           tpm: TpmOpt = None, expires: ExpiresOpt = None, json_out: JsonOpt = False) -> None:
    """Change a live key's profiles or limits (the secret stays)."""
    fields = _limits(profiles, budget, rpm, tpm, expires)
    if not fields:
        raise CLIError("nothing to update: give --profiles, --budget, --rpm, --tpm or --expires", code=2)
    key = _with_store(lambda s: s.update_key(name, **fields))
    if key is None or key.revoked_at is not None:
        raise _missing(name) if key is None else CLIError(f"key {name!r} is revoked; create a new one")
    _print_key(key, json_out)


@keys_app.command("revoke", cls=Command)
def revoke(name: Name) -> None:
    """Revoke a key: every instance refuses it within a second."""
    key = _with_store(lambda s: s.revoke_key(name))
    if key is None:
        raise _missing(name)
    out.print(f"revoked key {name!r} ({key.id}) at {key.revoked_at}", markup=False, soft_wrap=True)


@keys_app.command("rotate", cls=Command)
def rotate(name: Name, json_out: JsonOpt = False) -> None:
    """Replace a key's secret: the old one stops working, a new key (same name and limits) is printed once."""
    secret = new_secret()
    digest = key_hash(_server_secret(), secret)
    key = _with_store(lambda s: s.rotate_key(name, new_id("key_"), digest))
    if key is None:
        raise _missing(name)
    _print_secret(key, secret, json_out, "rotated")
