"""The Router's one profile resolution (explicit > /p/<name> > x-llmproxy-profile > default) and the
request's own switch (model "profile:<name>"), as a table; and the typed request record's log keys."""

from __future__ import annotations

import pytest

from llmproxy import config, routing
from llmproxy.errors import InvalidRequest
from llmproxy.routing import Router, UnknownProfile
from tests.routing import shapes as S


@pytest.fixture(scope="module")
def router() -> Router:
    cfg, _ = config.load(strict=False)
    return Router.build(cfg)


@pytest.mark.parametrize("explicit, prefix, header, expect", [
    (None, None, None, "balanced"),                  # the default profile
    (None, None, "cheap", "cheap"),                  # the header
    (None, "fast", "cheap", "fast"),                 # the URL prefix beats the header
    ("intelligent", "fast", "cheap", "intelligent"),  # an explicit choice beats both
    ("", "", "fast", "fast"),                        # empty names count as absent
])
def test_precedence(router, explicit, prefix, header, expect):
    assert router.profile(explicit, prefix, header).name == expect


@pytest.mark.parametrize("names", [("nope",), (None, "nope"), (None, None, "nope")])
def test_an_unknown_name_is_a_400_naming_the_valid_ones(router, names):
    with pytest.raises(UnknownProfile) as exc:
        router.profile(*names)
    assert exc.value.status == 400 and isinstance(exc.value, InvalidRequest)
    assert "'nope'" in exc.value.message and all(n in exc.value.message for n in router.names())


def test_the_requests_own_switch_wins_over_the_resolved_profile(router):
    body = {**S.main_turn("rename foo"), "model": "profile:intelligent"}
    d = router.decide(body, router.profile(None, "fast"))
    assert d.profile == "intelligent" and "switched to profile 'intelligent'" in d.reasons[0]
    with pytest.raises(InvalidRequest, match="unknown profile 'nope'"):
        router.decide({**body, "model": "profile:nope"}, "fast")


def test_decide_takes_a_name_or_a_compiled_profile(router):
    body = S.main_turn("help me plan the migration")
    by_name = router.decide(body, "intelligent")
    by_profile = router.decide(body, router.profile("intelligent"))
    assert by_name.to_dict() == by_profile.to_dict() and by_name.concept == "planning"


def test_build_compiles_every_profile(router):
    assert set(router.profiles) == set(router.cfg.profiles) and router.default_profile == "balanced"
    assert isinstance(router.profiles["intelligent"], routing.CompiledProfile)
