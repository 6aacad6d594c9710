"""The package list only (everything else is in pyproject.toml), found rather than written out: every package
under llmproxy/ (the data-only directories data/ and ui/ too), and the bundled profiles, which live at the top
level (profiles/) and ship as llmproxy._profiles (package-dir in pyproject.toml) with their knowledge-graph
directories. A directory missing from the list makes setuptools warn about it at every install."""

from setuptools import find_namespace_packages, setup

PROFILES = "llmproxy._profiles"


def packages() -> list[str]:
    skip = ["*.__pycache__", "__pycache__"]
    return [*find_namespace_packages(include=["llmproxy", "llmproxy.*"], exclude=skip),
            PROFILES, *(f"{PROFILES}.{p}" for p in find_namespace_packages("profiles", exclude=skip))]


if __name__ == "__main__":  # setuptools' build backend runs this file as __main__
    setup(packages=packages())
