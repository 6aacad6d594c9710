"""Client keys end to end (issue 27), on both stores (SQLite under LLMPROXY_HOME, PostgreSQL in the throwaway
cluster of tests/store/conftest.py): the ``llmproxy keys`` CLI against the store (no daemon); the daemon
accepting a store key or a config key, refusing revoked and expired ones (saying why, never with the secret),
seeing a revocation within its cache's TTL, holding a key to its profiles whichever way a profile is chosen,
keeping the admin routes to admin keys, and writing the key's name and id (never its secret) in the record."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from llmproxy.cli.app import app
from llmproxy.settings import DATABASE_URL_ENV
from tests.store.conftest import pg_cluster, pg_url  # noqa: F401 - the PostgreSQL fixtures, reused

SECRET_RE = re.compile(r"llmp_[A-Za-z0-9_-]{32}")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, home, monkeypatch) -> str:
    """Which store the CLI and the daemon use: SQLite under ``home``, or a fresh PostgreSQL database named
    by $LLMPROXY_DATABASE_URL."""
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    if request.param == "postgres":
        monkeypatch.setenv(DATABASE_URL_ENV, request.getfixturevalue("pg_url"))
    return request.param


def keys(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["keys", *args])
    return r.exit_code, r.stdout, r.stderr


def create(name: str, *opts: str) -> str:
    code, out, err = keys("create", "--name", name, *opts)
    assert code == 0, err
    assert SECRET_RE.fullmatch(out.strip()), out
    return out.strip()


# ------------------------------------------------------------------------------------------------ the CLI

def test_cli_create_list_show_update_revoke_rotate(backend, home):
    secret = create("alice", "--profiles", "intelligent,cheap", "--budget", "50/month", "--rpm", "60",
                    "--tpm", "100000", "--expires", "2027-01-01")
    code, out, _ = keys("show", "alice", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["profiles"] == ["intelligent", "cheap"] and shown["budget_usd"] == 50.0
    assert (shown["budget_period"], shown["rpm"], shown["tpm"]) == ("month", 60, 100000)
    assert shown["expires_at"] == "2027-01-01T00:00:00Z" and shown["state"] == "active"
    code, out, _ = keys("update", "alice", "--rpm", "none", "--profiles", "")
    assert code == 0 and re.search(r"rpm\s+-", out) and re.search(r"profiles\s+all", out)
    code, out, err = keys("rotate", "alice", "--json")
    rotated = json.loads(out)
    assert code == 0 and rotated["secret"] != secret and rotated["key"]["rotated_from"] == shown["id"]
    assert "shown once" in err
    code, out, _ = keys("revoke", "alice")
    assert code == 0 and "revoked key 'alice'" in out
    code, out, _ = keys("list")
    assert "no keys" in out
    code, out, _ = keys("list", "--all", "--json")
    assert [k["state"] for k in json.loads(out)] == ["revoked", "revoked"]
    assert secret not in out and rotated["secret"] not in out


@pytest.mark.parametrize(("args", "code", "says"), [
    (["create", "--name", "bad name"], 2, "name: 'bad name'"),
    (["create", "--name", "x", "--budget", "50"], 2, "budget: '50' is not AMOUNT/PERIOD"),
    (["create", "--name", "x", "--rpm", "-3"], 2, "rpm: '-3' must be a whole number"),
    (["create", "--name", "x", "--expires", "soon"], 2, "expires: 'soon'"),
    (["create", "--name", "x", "--profiles", "nope"], 2, "valid profiles:"),
    (["show", "ghost"], 1, "no key named 'ghost'"),
    (["revoke", "ghost"], 1, "no key named 'ghost'"),
    (["rotate", "ghost"], 1, "no key named 'ghost'"),
    (["update", "ghost", "--rpm", "5"], 1, "no key named 'ghost'"),
    (["update", "ghost"], 2, "nothing to update"),
])
def test_cli_refusals_name_the_problem(home, monkeypatch, args, code, says):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    got, _, err = keys(*args)
    assert got == code and says in err, err


def test_cli_name_taken(backend, home):
    create("bob")
    code, _, err = keys("create", "--name", "bob")
    assert code == 1 and "a live key named 'bob' exists" in err
