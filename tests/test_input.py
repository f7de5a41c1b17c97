"""Input that must not slip through: each refused with one line naming the file and the key,
exit 2, no traceback; and whatever the validator accepts plans and runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simd.errors import ScenarioError
from simd.model.scenario import parse_scenario
from simd.plan.schedule import plan_counts
from tests.conftest import simd, write_scenario

BASE = """
name = "t"
duration = "2s"
target = "null:"
[[fleet]]
name = "a"
count = 3
rate = 1.0
"""

REFUSED = [
    ("rate = inf", "rate = 1.0", "rate = inf", "fleet[0].rate: "),
    ("rate = nan", "rate = 1.0", "rate = nan", "fleet[0].rate: "),
    ("rate = 1e308", "rate = 1.0", "rate = 1e308", "fleet[0].rate: "),
    ("bare duration", 'duration = "2s"', "duration = 5",
     'duration: a duration is a string like "5s"'),
    ("count as a string", "count = 3", 'count = "500"', "fleet[0].count: "),
    ("wildcard +", "rate = 1.0", 'rate = 1.0\ntopic = "a/+/b"', "fleet[0].topic: "),
    ("wildcard #", "rate = 1.0", 'rate = 1.0\ntopic = "a/#"', "fleet[0].topic: "),
    ("U+0000", "rate = 1.0", 'rate = 1.0\ntopic = "a\\u0000b"', "U+0000"),
    ("empty topic", "rate = 1.0", 'rate = 1.0\ntopic = ""', "at least one character"),
    ("topic too long", "rate = 1.0", f'rate = 1.0\ntopic = "{"x" * 70000}"', "65,535 bytes"),
    ("inherited by a message", "rate = 1.0",
     'rate = 1.0\ntopic = "a/#"\n[[fleet.messages]]\nname = "m"', "fleet[0].topic: "),
    ("bad filter", "rate = 1.0", 'rate = 1.0\nsubscribe = ["a/#/b"]', "fleet[0].subscribe[0]: "),
    ("one client id", "rate = 1.0", 'rate = 1.0\n[fleet.mqtt]\nclient_id = "same"',
     "fleet[0].mqtt.client_id: "),
    ("unknown scheme", 'target = "null:"', 'target = "ftp://x"',
     "target: unsupported scheme 'ftp'"),
    ("slo as a number", "rate = 1.0", "rate = 1.0\n[slo]\nlatency_p99 = 100", "slo.latency_p99: "),
    ("too much load", "count = 3", "count = 10000000\n", "at most 1e+12"),
    ("seq overflow", "rate = 1.0", "rate = 1000.0", "a row's seq is a 32-bit number"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "old", "new", "expect"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_input_is_one_line_naming_the_key(
    tmp_path: Path, case: str, old: str, new: str, expect: str
) -> None:
    """`simd plan` refuses it: exit 2, one line `FILE: key.path: why`, no traceback."""
    body = BASE.replace(old, new, 1)
    if case == "too much load":
        body = body.replace('duration = "2s"', 'duration = "1000d"')
    if case == "seq overflow":
        body = body.replace('duration = "2s"', 'duration = "30d"')
    path = write_scenario(tmp_path, body)
    proc = simd("plan", str(path), check=2)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"simd: error: {path}: ")
    assert expect in proc.stderr, proc.stderr


def test_clashing_client_ids_across_groups(tmp_path: Path) -> None:
    """Two groups whose client id templates give one device's id to another: refused."""
    body = BASE + '[fleet.mqtt]\nclient_id = "c-{index}"\n'
    body += '[[fleet]]\nname = "b"\ncount = 2\nrate = 1.0\n[fleet.mqtt]\nclient_id = "c-{index}"\n'
    with pytest.raises(ScenarioError, match=r"fleet\[1\]\.mqtt\.client_id: device 'b-00000'"):
        parse_scenario(__import__("tomllib").loads(body), "s.toml")


def test_run_json_scenarios_still_read() -> None:
    """A scenario re-read from run.json (durations as integer nanoseconds) still validates, and
    so does one an older simd accepted that this one refuses (a wildcard topic)."""
    import tomllib

    from simd.model.scenario import Scenario

    s = parse_scenario(tomllib.loads(BASE), "s.toml")
    again = Scenario.model_validate(s.model_dump())
    assert again == s and again.duration == 2_000_000_000
    old = s.model_dump()
    old["fleet"][0]["topic"] = "a/+/b"
    assert Scenario.model_validate(old).fleet[0].topic == "a/+/b"
    with pytest.raises(ScenarioError, match=r"fleet\[0\]\.topic: "):
        parse_scenario(
            {
                **tomllib.loads(BASE),
                "fleet": [{**tomllib.loads(BASE)["fleet"][0], "topic": "a/+/b"}],
            },
            "s.toml",
        )


finite = st.floats(0.001, 50, allow_nan=False, allow_infinity=False)
documents = st.fixed_dictionaries(
    {
        "name": st.just("gen"),
        "duration": st.sampled_from(["1s", "500ms"]),
        "target": st.just("null:"),
        "fleet": st.lists(
            st.fixed_dictionaries(
                {
                    "count": st.integers(1, 40),
                    "rate": finite,
                    "arrival": st.sampled_from(["periodic", "poisson", "pareto", "zipf"]),
                    "qos": st.integers(0, 2),
                    "topic": st.text(
                        st.characters(codec="utf-8", exclude_characters="{}"), max_size=20
                    ),
                },
                optional={
                    "payload": st.sampled_from(
                        [{"kind": "random", "size": 10}, {"kind": "template", "template": "x"}]
                    ),
                },
            ),
            min_size=1,
            max_size=3,
        ),
    },
    optional={"seed": st.integers(0, 2**62), "phase": st.just([])},
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=documents)
def test_accepted_scenarios_plan_and_run(doc: dict, tmp_path: Path) -> None:
    """Whatever the validator accepts plans exactly and runs on null: without a traceback."""
    for i, g in enumerate(doc["fleet"]):
        g["name"] = f"g{i}"
        g["id"] = f"g{i}-{{index}}"
    try:
        scenario = parse_scenario(doc, "gen.toml")
    except ScenarioError:
        return
    assert plan_counts(scenario).total_publishes >= 0
    from simd.runtime import supervisor

    outcome = supervisor.run(
        scenario,
        scenario_path=tmp_path / "gen.toml",
        runs_dir=tmp_path / "runs",
        workers=1,
        clock="virtual",
        progress=False,
        status_port=-1,
    )
    assert outcome.state == "completed", outcome.problems
