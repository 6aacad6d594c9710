"""A reload keeps the rule start-up enforces: a daemon listening on a non-loopback address (here 0.0.0.0,
reached through 127.0.0.1) with proxy keys refuses a configuration without keys, naming auth.api_keys, and
keeps the old one (the key is still required). On loopback the same reload is allowed."""

from __future__ import annotations

import json
import os
import signal
import time

from tests.conftest import PROXY_KEY
from tests.helpers import cli
from tests.security.keyed_daemon import KEYED, daemon, get

NO_KEYS = "[server]\nsimulator_speed = 0\n"
OLD_KEY = {"LLMPROXY_API_KEYS": PROXY_KEY}


def test_reload_without_keys_on_a_remote_listener_is_refused(home):
    with daemon(home, "--host", "0.0.0.0", config=KEYED) as port:
        (home / "config.toml").write_text(NO_KEYS)
        r = cli("reload", home=home, env=OLD_KEY)  # the CLI presents the key the daemon still has
        assert r.returncode == 1, r.stdout
        assert "reload: auth.api_keys: " in r.stderr and "previous configuration stays" in r.stderr
        # the same by SIGHUP: the refusal is in daemon.log
        pid = json.loads((home / "llmproxy.pid").read_text())["pid"]
        os.kill(pid, signal.SIGHUP)
        log = home / "logs" / "daemon.log"
        for _ in range(500):
            if "reload failed: auth.api_keys" in log.read_text():
                break
            time.sleep(0.02)
        assert "reload failed: auth.api_keys" in log.read_text()
        assert get(port, "/v1/models")[0] == 401  # the old configuration, keys and all, stays in force
        status, health = get(port, "/health", PROXY_KEY)
        assert status == 200 and health["config_stale_since"]
        assert any("auth.api_keys" in p for p in health["reload_problems"])
        (home / "config.toml").write_text(KEYED)
        assert cli("reload", home=home).returncode == 0  # a configuration with keys is taken again
        assert get(port, "/health", PROXY_KEY)[1]["config_stale_since"] is None


def test_reload_without_keys_on_loopback_is_allowed(home):
    with daemon(home, config=KEYED) as port:
        (home / "config.toml").write_text(NO_KEYS)
        r = cli("reload", home=home, env=OLD_KEY)  # the CLI still knows the old key
        assert r.returncode == 0, r.stderr
        assert get(port, "/v1/models")[0] == 200


def test_allow_remote_lets_the_keys_go(home):
    with daemon(home, "--host", "0.0.0.0", "--allow-remote", config=KEYED) as port:
        (home / "config.toml").write_text(NO_KEYS)
        r = cli("reload", home=home, env=OLD_KEY)
        assert r.returncode == 0, r.stderr
        assert get(port, "/v1/models")[0] == 200
