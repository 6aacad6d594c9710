"""A finished request record's labels, bounded by the configuration: what the metrics and the usage ledger
group by. A provider or model the config does not name becomes "none" / "other", an unknown profile
"unknown", so no client can grow either without bound."""

from __future__ import annotations

from llmproxy.config import Config


def record_labels(rec: dict, cfg: Config) -> tuple[str, str, str, str]:
    """(profile, scenario, provider, model) of ``rec`` (a ``RequestRecord.to_json`` dict)."""
    provider, _, model = str(rec.get("target") or "none/none").partition("/")
    prov = cfg.providers.get(provider)
    if prov is None:
        provider = "none"
    if prov is None or model not in prov.models:
        model = "other" if model and model != "none" else "none"
    profile = rec.get("profile") if rec.get("profile") in cfg.profiles else "unknown"
    scenario = (rec.get("decision") or {}).get("scenario") or "none"
    return profile, scenario, provider, model
