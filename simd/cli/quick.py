"""One-liners: `simd pub`, `sub`, `conn`, `http` build a scenario from flags and run it.

The scenario is an ordinary one (simd.model.oneliners): the run is logged, ingested, reported
and judged as any other, and `--print-scenario` prints its TOML instead of running it (`simd
run -` runs that text from standard input).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from simd.cli.app import app, guarded
from simd.cli.options import (
    JUNIT,
    PROGRESS,
    PROGRESS_EVERY,
    REPORT,
    RUN_ID,
    RUNS_DIR,
    SUMMARY,
    WORKERS,
)
from simd.cli.run import check_run_id, progress_setting

URL = typer.Argument(help="target: mqtt://host:port (mqtts://, ws://, wss://) or embedded")
COUNT = typer.Option("--count", "-c", min=1, help="devices (connections)")
DURATION = typer.Option("--duration", "-d", help="how long, e.g. 30s, 5m")
SLO = typer.Option("--slo", help="NAME=LIMIT: an SLO to hold, e.g. latency_p99=50ms (repeat)")
PRINT = typer.Option("--print-scenario", help="print the scenario's TOML instead of running it")
NAME = typer.Option("--name", help="the scenario's name (the run folder's middle part)")
CONNECT_RATE = typer.Option("--connect-rate", "-R", min=0.001, help="connections opened per second")
VERSION = typer.Option("--mqtt-version", "-V", help="MQTT version: 5 or 3.1.1 (4 = 3.1.1)")
USER = typer.Option("--username", "-u", help="MQTT user name")
PASSWORD_ENV = typer.Option(
    "--password-env", "-P", help="environment variable holding the MQTT password"
)
SEED = typer.Option("--seed", help="the run's seed")
RAMP = typer.Option("--ramp", help="rise from 0 to the rate over this long first")


def _go(
    data: dict[str, Any],
    print_scenario: bool,
    workers: int | None,
    runs_dir: Path,
    run_id: str | None,
    progress: bool | float,
    report: bool,
    exports: tuple[Path | None, Path | None] = (None, None),
) -> None:
    """Print the scenario, or validate and run it as `simd run` would."""
    from simd.cli.run import finish_run
    from simd.model.scenario import parse_scenario
    from simd.model.toml_text import dumps
    from simd.runtime import supervisor
    from simd.runtime.preload import preload_workers

    if print_scenario:
        sys.stdout.write(dumps(data))
        return
    preload_workers()
    check_run_id(run_id)
    source = f"simd {data['name']}"
    scenario = parse_scenario(data, source)
    outcome = supervisor.run(
        scenario,
        scenario_path=Path.cwd() / f"{data['name']}.toml",
        runs_dir=runs_dir,
        run_id=run_id,
        workers=workers,
        clock=None,
        progress=progress,
        status_port=None,
    )
    finish_run(outcome, report, *exports)


@app.command()
@guarded
def pub(
    url: Annotated[str, URL],
    count: Annotated[int, COUNT] = 200,
    interval: Annotated[
        float | None, typer.Option("--interval", "-I", help="ms between a device's messages")
    ] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", "-r", help="messages/s per device (not with -I)")
    ] = None,
    topic: Annotated[
        str,
        typer.Option(
            "--topic", "-t", help="topic: %i the device's index, %c its client id, {device_id}"
        ),
    ] = "devices/%i/telemetry",
    qos: Annotated[int, typer.Option("--qos", "-q", min=0, max=2)] = 0,
    size: Annotated[int, typer.Option("--size", "-s", min=0, help="payload bytes")] = 256,
    message: Annotated[
        str | None,
        typer.Option(
            "--message", "-m", help="payload template: {device_id}, {seq}, {timestamp}, ..."
        ),
    ] = None,
    retain: Annotated[bool, typer.Option("--retain", help="publish with the retain flag")] = False,
    mqtt_version: Annotated[str, VERSION] = "3.1.1",
    username: Annotated[str | None, USER] = None,
    password_env: Annotated[str | None, PASSWORD_ENV] = None,
    connect_rate: Annotated[float | None, CONNECT_RATE] = None,
    duration: Annotated[str, DURATION] = "10s",
    ramp: Annotated[str | None, RAMP] = None,
    slo: Annotated[list[str] | None, SLO] = None,
    name: Annotated[str | None, NAME] = None,
    seed: Annotated[int, SEED] = 0,
    print_scenario: Annotated[bool, PRINT] = False,
    workers: Annotated[int | None, WORKERS] = None,
    runs_dir: Annotated[Path, RUNS_DIR] = Path("runs"),
    run_id: Annotated[str | None, RUN_ID] = None,
    progress: Annotated[bool, PROGRESS] = True,
    progress_interval: Annotated[str, PROGRESS_EVERY] = "10s",
    report: Annotated[bool, REPORT] = True,
    summary_export: Annotated[Path | None, SUMMARY] = None,
    junit: Annotated[Path | None, JUNIT] = None,
) -> None:
    """Devices that publish (as `emqtt_bench pub`): -c devices, each a message every -I ms
    (or -r per second) on -t, at -q, of -s bytes (or the -m template)."""
    from simd.model.oneliners import Pub, pub_scenario

    data = pub_scenario(
        Pub(url=url, count=count, duration=duration, name=name, seed=seed, slo=slo or [],
            connect_rate=connect_rate, ramp=ramp, interval_ms=interval, rate=rate, topic=topic,
            qos=qos, size=size, message=message, version=mqtt_version, username=username,
            password_env=password_env, retain=retain)
    )  # fmt: skip
    _go(
        data,
        print_scenario,
        workers,
        runs_dir,
        run_id,
        progress_setting(progress, progress_interval),
        report,
        (summary_export, junit),
    )


@app.command()
@guarded
def sub(
    url: Annotated[str, URL],
    topic: Annotated[str, typer.Option("--topic", "-t", help="the filter to subscribe to")] = "#",
    count: Annotated[int, typer.Option("--count", "-c", min=1, help="subscribers")] = 1,
    qos: Annotated[int, typer.Option("--qos", "-q", min=0, max=2)] = 1,
    mqtt_version: Annotated[str, VERSION] = "5",
    duration: Annotated[str, DURATION] = "10s",
    slo: Annotated[list[str] | None, SLO] = None,
    name: Annotated[str | None, NAME] = None,
    print_scenario: Annotated[bool, PRINT] = False,
    runs_dir: Annotated[Path, RUNS_DIR] = Path("runs"),
    run_id: Annotated[str | None, RUN_ID] = None,
    progress: Annotated[bool, PROGRESS] = True,
    progress_interval: Annotated[str, PROGRESS_EVERY] = "10s",
    report: Annotated[bool, REPORT] = True,
    summary_export: Annotated[Path | None, SUMMARY] = None,
    junit: Annotated[Path | None, JUNIT] = None,
) -> None:
    """Subscribers on a filter (probes): a receive row per message delivered, and the
    end-to-end latency of messages that carry a simd trace (mqtt.trace of a simd run)."""
    from simd.model.oneliners import Sub, sub_scenario

    data = sub_scenario(
        Sub(url=url, count=count, duration=duration, name=name, slo=slo or [], topic=topic,
            qos=qos, version=mqtt_version)
    )  # fmt: skip
    _go(
        data,
        print_scenario,
        1,
        runs_dir,
        run_id,
        progress_setting(progress, progress_interval),
        report,
        (summary_export, junit),
    )


@app.command()
@guarded
def conn(
    url: Annotated[str, URL],
    count: Annotated[int, COUNT] = 200,
    connect_rate: Annotated[float | None, CONNECT_RATE] = None,
    mqtt_version: Annotated[str, VERSION] = "3.1.1",
    username: Annotated[str | None, USER] = None,
    password_env: Annotated[str | None, PASSWORD_ENV] = None,
    keepalive: Annotated[str, typer.Option("--keepalive", "-k", help="MQTT keepalive")] = "60s",
    duration: Annotated[str, DURATION] = "10s",
    slo: Annotated[list[str] | None, SLO] = None,
    name: Annotated[str | None, NAME] = None,
    print_scenario: Annotated[bool, PRINT] = False,
    workers: Annotated[int | None, WORKERS] = None,
    runs_dir: Annotated[Path, RUNS_DIR] = Path("runs"),
    run_id: Annotated[str | None, RUN_ID] = None,
    progress: Annotated[bool, PROGRESS] = True,
    progress_interval: Annotated[str, PROGRESS_EVERY] = "10s",
    report: Annotated[bool, REPORT] = True,
    summary_export: Annotated[Path | None, SUMMARY] = None,
    junit: Annotated[Path | None, JUNIT] = None,
) -> None:
    """A connection storm (as `emqtt_bench conn`): -c connections opened at -R per second
    (all at once without it), each held for -d; nothing is published."""
    from simd.model.oneliners import Conn, conn_scenario

    data = conn_scenario(
        Conn(url=url, count=count, duration=duration, name=name, slo=slo or [],
             connect_rate=connect_rate, version=mqtt_version, username=username,
             password_env=password_env, keepalive=keepalive)
    )  # fmt: skip
    _go(
        data,
        print_scenario,
        workers,
        runs_dir,
        run_id,
        progress_setting(progress, progress_interval),
        report,
        (summary_export, junit),
    )


@app.command()
@guarded
def http(
    url: Annotated[str, typer.Argument(help="http(s)://host:port/path the requests go to")],
    count: Annotated[int, COUNT] = 10,
    rate: Annotated[float, typer.Option("--rate", "-r", help="requests/s per device")] = 1.0,
    method: Annotated[str, typer.Option("--method", "-X")] = "GET",
    header: Annotated[
        list[str] | None, typer.Option("--header", "-H", help="'Name: value' (repeat)")
    ] = None,
    body: Annotated[
        str | None, typer.Option("--body", "-b", help="body template: {device_id}, {seq}, ...")
    ] = None,
    expect: Annotated[
        list[int] | None, typer.Option("--expect", help="statuses that pass (repeat)")
    ] = None,
    duration: Annotated[str, DURATION] = "10s",
    ramp: Annotated[str | None, RAMP] = None,
    slo: Annotated[list[str] | None, SLO] = None,
    name: Annotated[str | None, NAME] = None,
    seed: Annotated[int, SEED] = 0,
    print_scenario: Annotated[bool, PRINT] = False,
    workers: Annotated[int | None, WORKERS] = None,
    runs_dir: Annotated[Path, RUNS_DIR] = Path("runs"),
    run_id: Annotated[str | None, RUN_ID] = None,
    progress: Annotated[bool, PROGRESS] = True,
    progress_interval: Annotated[str, PROGRESS_EVERY] = "10s",
    report: Annotated[bool, REPORT] = True,
    summary_export: Annotated[Path | None, SUMMARY] = None,
    junit: Annotated[Path | None, JUNIT] = None,
) -> None:
    """HTTP requests at a rate (an open model: -c devices, each -r requests per second)."""
    from simd.model.oneliners import Http, http_scenario

    data = http_scenario(
        Http(url=url, count=count, duration=duration, name=name, seed=seed, slo=slo or [],
             ramp=ramp, rate=rate, method=method, headers=header or [], body=body,
             expect_status=expect or [])
    )  # fmt: skip
    _go(
        data,
        print_scenario,
        workers,
        runs_dir,
        run_id,
        progress_setting(progress, progress_interval),
        report,
        (summary_export, junit),
    )
