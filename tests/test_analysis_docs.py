"""analysis/README.md: every table, view and macro has a section, and every example runs."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO, SCENARIOS, virtual_run

README = REPO / "analysis" / "README.md"
_DEFINED = re.compile(r"CREATE (?:TABLE IF NOT EXISTS|OR REPLACE VIEW|OR REPLACE MACRO) (\w+)")


def _sections() -> dict[str, list[str]]:
    """### name -> the sql blocks under it (the whole README under '')."""
    out: dict[str, list[str]] = {}
    current = ""
    for part in re.split(r"^(### \w+)\s*$", README.read_text(), flags=re.M):
        if part.startswith("### "):
            current = part[4:]
            continue
        out.setdefault(current, []).extend(re.findall(r"```sql\n(.*?)```", part, flags=re.S))
    return out


def test_every_definition_is_documented() -> None:
    """A table, view or macro without a section in analysis/README.md fails here."""
    defined = set()
    for f in ("schema.sql", "views.sql"):
        defined |= set(_DEFINED.findall((REPO / "analysis" / f).read_text()))
    sections = _sections()
    assert sorted(defined - set(sections)) == []
    assert sorted(set(sections) - defined - {""}) == []
    assert all(sections[name] for name in defined), "each section has an example"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    runs = tmp_path_factory.mktemp("runs")
    spike = SCENARIOS / "spike.toml"
    a = virtual_run(spike, runs, "--run-id", "a", "--duration", "90s", check=1)
    b = virtual_run(spike, runs, "--run-id", "b", "--duration", "90s", "--seed", "5", check=1)
    return a, b


def test_every_example_runs(two_runs: tuple[Path, Path]) -> None:
    """Each example query returns rows (or none) without an error, on a real run's file."""
    a, b = two_runs
    con = duckdb.connect(str(b / "results.duckdb"), read_only=True)
    try:
        for name, blocks in _sections().items():
            for block in blocks:
                sql = block.replace("runs/base/results.duckdb", str(a / "results.duckdb"))
                for stmt in [s for s in sql.split(";") if s.strip()]:
                    try:
                        con.execute(stmt).fetchall()
                    except duckdb.Error as exc:  # pragma: no cover - the failure message
                        pytest.fail(f"analysis/README.md ### {name}: {exc}\n{stmt}")
    finally:
        con.close()


def test_the_sql_code_names_are_the_log_s() -> None:
    """views.sql names kinds and statuses by the lists simd.log.events writes codes from."""
    import duckdb

    from simd.log.events import KINDS, STATUSES
    from simd.results.ingest import sql_file

    views = sql_file("views.sql")
    con = duckdb.connect()
    con.execute(views[: views.index("-- one row per logged event")])
    assert [
        n for (n,) in con.execute("SELECT name FROM kind_names ORDER BY code").fetchall()
    ] == list(KINDS)
    assert [
        n for (n,) in con.execute("SELECT name FROM status_names ORDER BY code").fetchall()
    ] == list(STATUSES)
    assert con.execute("SELECT kind_code('receive'), status_code('ok')").fetchone() == (3, 7)
