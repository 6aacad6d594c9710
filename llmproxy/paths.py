"""Where llmproxy keeps its state. ``LLMPROXY_HOME`` overrides everything (tests and the demo use it)."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

#: what the daemon creates is its owner's alone: directories 0700, files 0600
PRIVATE_UMASK = 0o077
#: what llmproxy keeps in its home; ``tighten`` goes into these (and no further into a home that is shared,
#: such as one set to ``~``). ``demo/claude-code`` is an npm install: its directory is closed, not walked.
OWN_ENTRIES = ("config.toml", "llmproxy.pid", "llmproxy.tmp", "logs", "profiles", "llmproxy.db",
               "llmproxy.db-wal", "llmproxy.db-shm", "llmproxy.db-journal", "llmproxy.db.lock", "files", "run",
               "claude-settings", "demo", ".write-test")
NOT_WALKED = ("claude-code",)


def home() -> Path:
    env = os.environ.get("LLMPROXY_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("llmproxy", appauthor=False))


def config_file() -> Path:
    return home() / "config.toml"


def pid_file() -> Path:
    return home() / "llmproxy.pid"


def log_dir() -> Path:
    return home() / "logs"


def request_log() -> Path:
    return log_dir() / "requests.jsonl"


def daemon_log() -> Path:
    return log_dir() / "daemon.log"


def user_profiles_dir() -> Path:
    return home() / "profiles"


def bundled_profiles_dir() -> Path:
    """The profiles shipped with llmproxy: ``profiles/`` of a source checkout (editable install), else the copy
    a wheel carries as ``llmproxy/_profiles``."""
    source = REPO_ROOT / "profiles"
    return source if source.is_dir() else Path(__file__).resolve().parent / "_profiles"


def default_config_file() -> Path:
    return Path(__file__).resolve().parent / "data" / "default.toml"


def make_private() -> None:
    """From now on everything this process creates is private (umask 077), and what llmproxy already keeps
    under the home loses its group and other permissions (files 0600, directories 0700; an executable stays
    its owner's). The daemon calls it before it creates anything; its children (workers) inherit the umask.
    Not for commands that start the user's programs (``code``, ``demo``): those would inherit the umask."""
    os.umask(PRIVATE_UMASK)
    tighten(home())


def tighten(root: Path) -> None:
    """``root`` itself and llmproxy's entries in it (``OWN_ENTRIES``), recursively, made private. Symlinks and
    what another user owns are left alone; a file that vanishes meanwhile is no error. A home that is a
    shared directory (sticky, like /tmp) or the user's own home directory keeps its mode; its entries do not."""
    if not _shared(root):
        _private(root)
    for name in OWN_ENTRIES:
        top = root / name
        if not _private(top) or not top.is_dir() or top.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if _private(Path(dirpath, d)) and d not in NOT_WALKED]
            for f in filenames:
                _private(Path(dirpath, f))


def _shared(path: Path) -> bool:
    try:
        return bool(os.stat(path).st_mode & stat.S_ISVTX) or path.resolve() == Path.home().resolve()
    except (OSError, RuntimeError):
        return True


def _private(path: Path) -> bool:
    """Drop the group/other bits of ``path``; whether it is there (and ours, not a symlink)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid():
        return False
    if st.st_mode & 0o077:
        with contextlib.suppress(OSError):
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)
    return True


def private_dir(path: Path) -> Path:
    """``path`` as a directory (with its parents) that only its owner can enter, whatever the umask."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
