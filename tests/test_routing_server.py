"""Routing through the real server: the route header, the decision in the log, /api/route, hot reload,
and route-test as a subprocess."""

from __future__ import annotations

import json
import signal
import time

import aiohttp

from tests.conftest import free_port, wait_log
from tests.helpers import cli
from tests.routing import shapes as S


async def test_route_header_and_log_decision(proxy_factory, fake_anthropic, home):
    url, _ = await proxy_factory()
    body = {**S.main_turn("help me plan out the migration"), "stream": False}
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/p/intelligent/v1/messages", json=body) as r:
            route = r.headers["x-llmproxy-route"]
    # the reasoning model's providers have no key, so the simulator stands in for the primary target
    assert route.startswith("profile=intelligent; scenario=keyword; target=openrouter/deepseek/deepseek-r1-0528")
    assert route.endswith("concept=planning")
    rec = (await wait_log(home, 1))[-1]
    d = rec["decision"]
    assert d["scenario"] == "keyword" and d["concept"] == "planning"
    assert d["matches"][0]["term"] in ("help me plan", "plan out")
    assert [c["provider"] for c in d["chain"]][:3] == ["openrouter", "deepseek", "anthropic"]
    assert rec["simulated"] is True


async def test_background_goes_to_its_route_on_the_real_upstream(proxy_factory, fake_anthropic):
    url, _ = await proxy_factory()
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/p/fast/v1/messages", json={**S.title_request("plan things"), "stream": False}) as r:
            assert "scenario=background" in r.headers["x-llmproxy-route"]
    assert fake_anthropic.requests[-1]["body"]["model"] == "claude-haiku-4-5"


async def test_api_route(proxy):
    url, _ = proxy
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/api/route", json={"text": "weigh the pros and cons", "profile": "intelligent"}) as r:
            d = await r.json()
        assert d["scenario"] == "keyword" and d["concept"] == "tradeoffs"
        async with s.post(url + "/p/intelligent/api/route", json=S.web_search_request("x")) as r:
            assert (await r.json())["scenario"] == "web_search"
        async with s.post(url + "/api/route", json={"text": "x", "profile": "nope"}) as r:
            assert r.status == 400
        async with s.post(url + "/api/route", json={"nothing": 1}) as r:
            assert r.status == 400


async def test_override_unknown_model_is_400(proxy):
    url, _ = proxy
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/messages", json={**S.main_turn("x"), "model": "anthropic,claude-9"}) as r:
            body = await r.json()
    assert r.status == 400 and "claude-sonnet-4-5" in body["error"]["message"]


def test_route_test_cli(home, tmp_path):
    r = cli("route-test", "help me plan this", "--profile", "intelligent", "--json", home=home)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["scenario"] == "keyword" and d["concept"] == "planning"
    r = cli("route-test", "rename foo", "--all-profiles", "--json", home=home)
    assert {x["profile"] for x in json.loads(r.stdout)} >= {"fast", "intelligent", "balanced", "cheap"}
    req = tmp_path / "req.json"
    req.write_text(json.dumps({"headers": {"X-Claude-Code-Agent-Id": "a1"}, "body": S.subagent_request("plan")[0]}))
    r = cli("route-test", "--request", str(req), "-p", "fast", "--json", home=home)
    assert json.loads(r.stdout)["scenario"] == "subagent"
    r = cli("route-test", "plan the design", "-p", "intelligent", home=home)
    assert "planning" in r.stdout and "chain" in r.stdout
    assert cli("route-test", "x", "-p", "nope", home=home).returncode == 2  # a usage error, like an unknown concept


def _route(port: int, text: str) -> dict:
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/route", data=json.dumps(
        {"text": text, "profile": "mine"}).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_hot_reload_and_broken_kg_keeps_previous(home):
    kg = home / "profiles" / "kg" / "mine"
    kg.mkdir(parents=True)
    (home / "profiles" / "mine.toml").write_text(
        'default = "anthropic,claude-haiku-4-5"\nkg = "kg/mine"\n[scenarios]\nkeyword = "anthropic,claude-opus-4-8"\n')
    (kg / "refactor.md").write_text("synonyms:: refactor\nscenario:: keyword\n")
    port = free_port()
    assert cli("serve", "--daemon", "--simulate", "--port", str(port), home=home).returncode == 0
    try:
        assert _route(port, "please overhaul this")["scenario"] == "default"
        (kg / "overhaul.md").write_text("synonyms:: overhaul\nscenario:: keyword\n")
        assert cli("reload", home=home).returncode == 0
        for _ in range(100):
            if _route(port, "please overhaul this")["scenario"] == "keyword":
                break
            time.sleep(0.05)
        assert _route(port, "please overhaul this")["concept"] == "overhaul"
        # a broken file: reported, previous routing stays
        (kg / "broken.md").write_text("synonyms:: zap\npriority:: lots\n")
        pid = json.loads((home / "llmproxy.pid").read_text())["pid"]
        import os

        os.kill(pid, signal.SIGHUP)
        for _ in range(100):
            if "reload failed" in (home / "logs" / "daemon.log").read_text():
                break
            time.sleep(0.05)
        log = (home / "logs" / "daemon.log").read_text()
        assert "reload failed" in log and "broken.md:2" in log
        assert _route(port, "please overhaul this")["concept"] == "overhaul"
    finally:
        cli("stop", home=home)
