"""The wheel carries every package under llmproxy/ (the data-only directories too) and the bundled profiles,
and setuptools has nothing to warn about: setup.py finds the package list (a directory left out of it would
make every install print a screen of 'Package would be ignored' warnings)."""

import runpy
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _dirs_with_files(root: Path) -> set[Path]:
    return {p.parent for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_every_directory_with_files_is_a_listed_package():
    found = set(runpy.run_path(str(REPO / "setup.py"))["packages"]())
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "packages" not in cfg  # one place decides the list
    assert cfg["package-dir"] == {"llmproxy._profiles": "profiles"}
    want = {".".join(d.relative_to(REPO).parts) for d in _dirs_with_files(REPO / "llmproxy")}
    want |= {".".join(("llmproxy", "_profiles", *d.relative_to(REPO / "profiles").parts))
             for d in _dirs_with_files(REPO / "profiles")}
    assert want <= found, sorted(want - found)
    assert {"llmproxy.ui", "llmproxy.data", "llmproxy._profiles", "llmproxy._profiles.kg.intelligent"} <= found
    assert not any("__pycache__" in p or "egg-info" in p for p in found)


def test_package_data_covers_the_dashboard_the_defaults_and_the_profiles():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = {p for pat in data["llmproxy"] for p in (REPO / "llmproxy").glob(pat)}
    assert {p for p in (REPO / "llmproxy" / "ui").iterdir() if p.is_file()} <= shipped
    assert REPO / "llmproxy" / "data" / "default.toml" in shipped
    profiles = {p for pat in data["llmproxy._profiles"] for p in (REPO / "profiles").glob(pat)}
    assert {p for p in (REPO / "profiles").rglob("*") if p.is_file()} <= profiles
