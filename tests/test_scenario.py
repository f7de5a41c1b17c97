"""Scenario files: precise errors with dotted key paths, exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simd.errors import ScenarioError
from simd.model.scenario import json_schema, parse_scenario
from simd.plan.inputs import load_scenario
from tests.conftest import SCENARIOS, simd, write_scenario

GOOD = """
name = "t"
duration = "10s"
[[fleet]]
name = "a"
count = 3
rate = 1.0
"""


def _problems(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write_scenario(tmp_path, body))
    return info.value.problems


def test_good_scenario_loads(tmp_path: Path) -> None:
    """A minimal scenario validates with defaults filled in."""
    s = load_scenario(write_scenario(tmp_path, GOOD))
    assert s.duration_ns == 10_000_000_000
    assert s.fleet[0].rate_per_s == 1.0


def test_unknown_key_names_its_path(tmp_path: Path) -> None:
    """An unknown key inside a fleet group is reported with its dotted path."""
    problems = _problems(tmp_path, GOOD + "colour = 'red'\n")
    assert problems == ["fleet[0].colour: unknown key"]


def test_negative_rate_and_wrong_type(tmp_path: Path) -> None:
    """Each bad value gets its own line naming fleet[i].key."""
    body = (
        GOOD.replace("rate = 1.0", "rate = -2\n")
        + """
[[fleet]]
name = "b"
count = "many"
interval = "5s"
"""
    )
    problems = _problems(tmp_path, body)
    assert any(p.startswith("fleet[0].rate: ") and "greater than 0" in p for p in problems)
    assert any(p.startswith("fleet[1].count: ") for p in problems)


def test_empty_fleet(tmp_path: Path) -> None:
    """A scenario without devices is refused."""
    problems = _problems(tmp_path, 'name = "t"\nduration = "1s"\nfleet = []\n')
    assert problems and problems[0].startswith("fleet: ")


def test_bad_duration_and_phase(tmp_path: Path) -> None:
    """Durations must look like 30s; phase errors name phase[i]."""
    body = GOOD + '[[phase]]\nname = "p"\nduration = "ten"\n'
    assert _problems(tmp_path, body) == [
        "phase[0].duration: not a duration: 'ten'; write it like 500ms, 30s, 10m or 2h"
    ]


def test_template_placeholder_must_exist(tmp_path: Path) -> None:
    """A payload template naming an undefined field is an error at load, not at run."""
    body = GOOD + "payload = { kind = 'template', template = '{\"x\": {nope}}' }\n"
    problems = _problems(tmp_path, body)
    assert (
        len(problems) == 1
        and "{nope}" in problems[0]
        and problems[0].startswith("fleet[0].payload")
    )


def test_missing_data_file(tmp_path: Path) -> None:
    """A JSON-lines payload file that does not exist is named with where it was looked for."""
    body = GOOD + "payload = { kind = 'jsonl', file = 'nope.jsonl' }\n"
    problems = _problems(tmp_path, body)
    assert problems[0].startswith("fleet[0].payload.file: 'nope.jsonl' not found")


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    """Unparseable and absent files are one-line errors too."""
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed")
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad)
    assert info.value.problems[0].startswith("not valid TOML")
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "absent.toml")
    assert info.value.problems == ["file not found"]
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ScenarioError):
        load_scenario(binary)


def test_cli_bad_scenario_exit_2_without_traceback(tmp_path: Path) -> None:
    """`simd plan` and `simd run` print one line per problem, prefixed by the file, and exit 2."""
    path = write_scenario(tmp_path, GOOD.replace("count = 3", "count = 0") + "extra = 1\n")
    for cmd in (["plan", str(path)], ["run", str(path), "--runs-dir", str(tmp_path)]):
        proc = simd(*cmd, check=2)
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines == [
            f"simd: error: {path}: fleet[0].count: input should be greater than 0",
            f"simd: error: {path}: fleet[0].extra: unknown key",
        ]


def test_cli_bad_flag_values_exit_2(tmp_path: Path) -> None:
    """Bad flag values (clock, format) are input errors."""
    path = write_scenario(tmp_path, GOOD)
    proc = simd("run", str(path), "--clock", "sometimes", "--runs-dir", str(tmp_path), check=2)
    assert "clock 'sometimes'" in proc.stderr and "Traceback" not in proc.stderr
    proc = simd("plan", str(path), "--format", "xml", check=2)
    assert "--format" in proc.stderr


def test_schema_is_json_schema() -> None:
    """`simd schema` prints the models' JSON Schema."""
    proc = simd("schema", check=0)
    import json

    schema = json.loads(proc.stdout)
    assert schema == json.loads(__import__("json").dumps(json_schema()))
    assert "fleet" in schema["properties"]


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_scenarios_load(path: Path) -> None:
    """Every scenario in scenarios/ is valid."""
    load_scenario(path)


toml_values = st.recursive(
    st.none().map(lambda _: "x")
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(min_size=1, max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
keys = st.sampled_from(
    [
        "name",
        "seed",
        "duration",
        "target",
        "fleet",
        "phase",
        "slo",
        "run",
        "sim",
        "count",
        "rate",
        "bogus",
    ]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, toml_values, max_size=6))
def test_arbitrary_documents_give_clean_errors(doc: dict) -> None:
    """Any document either validates or raises ScenarioError whose lines all name a key path."""
    try:
        parse_scenario(doc, "gen.toml")
    except ScenarioError as exc:
        assert exc.problems
        for line in exc.problems:
            assert ": " in line


@settings(max_examples=200)
@given(text=st.text(max_size=200))
def test_arbitrary_text_files(text: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Arbitrary bytes as a scenario file never raise anything but ScenarioError."""
    p = tmp_path_factory.mktemp("t") / "s.toml"
    p.write_text(text)
    with pytest.raises(ScenarioError):
        load_scenario(p)


def _toml_examples() -> list[tuple[str, dict]]:
    """Every shipped scenario and every TOML example in the README, as data."""
    import re
    import tomllib

    from tests.conftest import REPO, SCENARIOS

    found = [(p.name, tomllib.loads(p.read_text())) for p in sorted(SCENARIOS.glob("*.toml"))]
    found += [(p.name, tomllib.loads(p.read_text())) for p in (REPO / "examples").rglob("*.toml")]
    readme = (REPO / "README.md").read_text()
    for i, block in enumerate(re.findall(r"```toml\n(.*?)```", readme, re.S)):
        found.append((f"README toml block {i}", tomllib.loads(block)))
    return found


def test_the_schema_accepts_every_shipped_scenario_and_refuses_integer_durations() -> None:
    """Editors validating with `simd schema` (JSON Schema 2020-12, with $schema and $id) accept
    every scenario the repository ships and the README shows; a bare number as a duration, as
    the models refuse it, is refused, duration defaults are written as durations, and every
    property has a description."""
    import jsonschema

    schema = json_schema()
    assert schema["$schema"].endswith("2020-12/schema") and schema["$id"].startswith("urn:")
    validator = jsonschema.Draft202012Validator(schema)
    examples = _toml_examples()
    assert len(examples) >= 10
    for name, data in examples:
        errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(data)]
        assert errors == [], name
    bad = {"name": "x", "duration": 5, "fleet": [{"name": "g", "count": 1, "rate": 1.0}]}
    assert not validator.is_valid(bad)
    keepalive = schema["$defs"]["MqttOptions"]["properties"]["keepalive"]
    assert keepalive["default"] == "1m" and keepalive["type"] == "string"
    undescribed = [
        f"{model}.{key}"
        for model, d in [*schema["$defs"].items(), ("Scenario", schema)]
        for key, prop in d.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undescribed == []  # each from its field's docstring in simd.model.scenario
