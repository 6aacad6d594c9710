"""The wheel must carry every subpackage and the bundled profiles (pyproject lists packages explicitly)."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_for_the_wheel():
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "llmproxy").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert cfg["package-dir"]["llmproxy._profiles"] == "profiles"
    assert {"*.toml", "kg/*/*.md"} <= set(cfg["package-data"]["llmproxy._profiles"])
