"""The knowledge graph: parsing (Terraphim format + our keys), malformed files, matching rules."""

from __future__ import annotations

import pytest

from llmproxy.routing.kg import KGError, build, load_dir, parse_concept


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_parse_terraphim_file_with_our_keys(tmp_path):
    p = write(tmp_path, "root-cause.md", "# Root cause\n\nsome prose\nsynonyms:: RCA, why did it break\n"
              "synonyms:: postmortem\nroute:: anthropic, claude-opus-4-8\nroute:: deepseek,deepseek-reasoner\n"
              "priority:: 85\nunknown_key:: ignored\n")
    c = parse_concept(p)
    assert c.name == "root-cause"
    assert c.terms == ("root cause", "rca", "why did it break", "postmortem")
    assert [str(t) for t in c.routes] == ["anthropic/claude-opus-4-8", "deepseek/deepseek-reasoner"]
    assert c.priority == 85 and not c.absorber


@pytest.mark.parametrize("line,needle", [
    ("route:: just-one-part", "route::"),
    ("priority:: high", "priority::"),
    ("priority:: 101", "between 0 and 100"),
    ("scenario:: dreaming", "unknown scenario"),
])
def test_malformed_lines_name_file_and_line(tmp_path, line, needle):
    p = write(tmp_path, "bad.md", f"# Bad\nsynonyms:: x y\n{line}\n")
    with pytest.raises(KGError) as exc:
        parse_concept(p)
    assert f"{p}:3" in str(exc.value) and needle in str(exc.value)


def test_unreadable_file(tmp_path):
    p = tmp_path / "bin.md"
    p.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(KGError, match="cannot read"):
        parse_concept(p)


def test_missing_dir(tmp_path):
    with pytest.raises(KGError, match="not found"):
        load_dir(tmp_path / "nope")


def test_matching_rules(tmp_path):
    write(tmp_path, "plan.md", "synonyms:: plan out, planning\nscenario:: keyword\npriority:: 70\n")
    write(tmp_path, "casual.md", "synonyms:: i plan\n")
    write(tmp_path, "debug.md", "synonyms:: root cause\nscenario:: keyword\npriority:: 60\n")
    kg = load_dir(tmp_path)
    best, ms = kg.match("Plan Out the work")
    assert best.name == "plan" and ms[0].term == "plan out" and (ms[0].start, ms[0].end) == (0, 8)  # longest
    assert kg.match("explanation planet airplane planning_doc replanner planners")[0] is None  # word boundaries
    best, ms = kg.match("we replanned it")  # derived form: re- prefix + inflection of the term "plan"
    assert best.name == "plan" and ms[0].surface == "replanned" and ms[0].term == "plan"
    assert kg.match("see plan.md")[0] is None  # a file name is not a request
    assert kg.match("i plan to rest")[0] is None  # absorber consumes its phrase
    best, ms = kg.match("find the root cause, then plan")
    assert best.name == "plan"  # priority, not position
    assert [m.concept for m in ms] == ["debug", "plan"]


def test_duplicates_first_wins_and_are_reported(tmp_path):
    a = write(tmp_path, "a.md", "synonyms:: shared term\nscenario:: keyword\n")
    b = write(tmp_path, "b.md", "synonyms:: shared term\nscenario:: think\n")
    kg = build([parse_concept(a), parse_concept(b)])
    assert kg.duplicates == [("shared term", "a", "b")]
    assert kg.match("a shared term")[0].name == "a"


def test_empty_kg_matches_nothing():
    assert build([]).match("plan everything") == (None, [])


def test_bundled_kgs_check_clean():
    from llmproxy import config, routing
    from llmproxy.cli.configcmd import kg_problems

    cfg, _ = config.load(strict=False)
    assert kg_problems(cfg, routing.compile_profiles(cfg)) == []
