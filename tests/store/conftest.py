"""A throwaway PostgreSQL cluster for the store's tests: ``initdb`` into a temp dir (as ``nobody`` when the
tests run as root: initdb refuses root), ``pg_ctl start`` on a free port on 127.0.0.1 with its socket in
that dir, one per test session, stopped and removed at the end. Each test gets a fresh database in it.

Without PostgreSQL's binaries the tests that need it are skipped loudly, except under CI=true, where
.ci/run installs them and their absence fails."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmproxy.settings import DATABASE_URL_ENV, StoreConfig
from llmproxy.store import open_store
from tests.conftest import free_port

USER = "llmproxy"


def pg_bindir() -> Path | None:
    """Where initdb and pg_ctl are: pg_config's bindir, else the newest /usr/lib/postgresql/*/bin."""
    found = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        found.append(out)
    found += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    return next((Path(d) for d in found if d and (Path(d) / "initdb").exists()
                 and (Path(d) / "pg_ctl").exists()), None)


@dataclass
class Cluster:
    bindir: Path
    root: Path
    port: int
    password: str

    def url(self, db: str) -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{db}"

    def psql(self, sql: str, db: str = "postgres") -> str:
        """Run ``sql`` as the cluster's superuser over its socket (trust), the answer as unaligned text."""
        out = subprocess.run([str(self.bindir / "psql"), "-h", str(self.root), "-p", str(self.port), "-U", USER,
                              "-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def new_database(self) -> str:
        name = "t_" + secrets.token_hex(6)
        self.psql(f"CREATE DATABASE {name}")
        return name


def _run(cmd: list[str], as_user: list[str], cwd: Path) -> None:
    out = subprocess.run(as_user + cmd, capture_output=True, text=True, cwd=cwd if cwd.is_dir() else None,
                         timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed ({out.returncode}): {out.stdout}\n{out.stderr}")


@pytest.fixture(scope="session")
def pg_cluster():
    bindir = pg_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run must install it (Debian package postgresql)")
        pytest.skip("SKIPPED LOUDLY: PostgreSQL's binaries (initdb, pg_ctl) are not installed "
                    "(apt-get install postgresql); the PostgreSQL store tests need them")
    root_user = os.geteuid() == 0  # initdb refuses to run as root: then the cluster is nobody's
    root = Path(tempfile.mkdtemp(prefix="llmproxy-pg-", dir="/tmp" if root_user else None))
    as_user: list[str] = []
    if root_user:
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    cluster = Cluster(bindir, root, free_port(), "pw-" + secrets.token_hex(12))
    data, started = root / "data", False
    try:
        pwfile = root / "pwfile"
        pwfile.write_text(cluster.password + "\n")
        if root_user:
            os.chown(pwfile, nobody.pw_uid, -1)
        _run([str(bindir / "initdb"), "-D", str(data), "-U", USER, "-E", "UTF8", "--locale=C", "--no-sync",
              "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"], as_user, root)
        opts = (f"-p {cluster.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o", opts, "-w",
              "-t", "60", "start"], as_user, root)
        started = True
        yield cluster
    finally:
        if started:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], as_user, root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """A fresh, empty database in the session's cluster (with the password in its URL)."""
    return pg_cluster.url(pg_cluster.new_database())


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request, tmp_path, monkeypatch):
    """(home, StoreConfig) naming one backend, for each backend in turn; the environment's database URL is
    out of the way."""
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    if request.param == "sqlite":
        return tmp_path, StoreConfig()
    return tmp_path, StoreConfig(url=request.getfixturevalue("pg_url"), pool_size=8)


@pytest.fixture
async def store(store_settings):
    """An open store on each backend in turn, closed after the test."""
    s = open_store(*store_settings)
    yield s
    await s.close()
