"""One list of provider kinds: what the config accepts is what the registry builds, and each entry is a
provider class."""

from __future__ import annotations

from llmproxy import providers, settings


def test_the_config_accepts_exactly_the_kinds_the_registry_builds():
    assert tuple(providers.KINDS) == settings.PROVIDER_KINDS


def test_every_kind_names_an_importable_provider_class():
    for kind in providers.KINDS:
        cls = providers.kind_class(kind)
        assert isinstance(cls, type), kind
        for method in ("messages", "count_tokens"):
            assert callable(getattr(cls, method, None)), (kind, method)
