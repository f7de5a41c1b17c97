"""Tools around runs: `broker` (the embedded broker), `schema`, `k8s render`."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from simd.cli.app import app, guarded
from simd.cli.options import TARGET, out_option
from simd.cli.run import check_run_id, overrides
from simd.errors import RunError, UserError


@app.command()
@guarded
def broker(
    kind: Annotated[
        str | None, typer.Option(help="mosquitto | amqtt (default: the best here)")
    ] = None,
    port: Annotated[int, typer.Option(help="loopback port (0: a free one)")] = 0,
) -> None:
    """Run the embedded MQTT broker on loopback until Ctrl-C; prints its URL first."""
    import time

    from simd.runtime.broker import EmbeddedBroker

    stop = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with EmbeddedBroker(kind, port=port) as b:
        print(b.url, flush=True)
        sys.stderr.write(f"simd: {b.kind} listening on {b.url}; Ctrl-C stops it\n")
        while not stop:
            if b.proc is not None and b.proc.poll() is not None:
                raise RunError(f"broker exited: {b.log_tail()}")
            time.sleep(0.2)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editors)."""
    from simd.model.scenario import json_schema

    print(json.dumps(json_schema(), indent=2))


k8s_app = typer.Typer(no_args_is_help=True, help="Kubernetes: run a scenario as N shards.")


app.add_typer(k8s_app, name="k8s")


@k8s_app.command("render")
@guarded
def k8s_render(
    scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
    shards: Annotated[int, typer.Option(min=1, help="shard pods (an Indexed Job's completions)")],
    image: Annotated[str, typer.Option(help="the simd image (built from the Containerfile)")],
    run_id: Annotated[str | None, typer.Option(help="default: <name>-<start time, UTC>")] = None,
    start_at: Annotated[
        str, typer.Option(help="shared t=0: epoch seconds, ISO 8601, or +DURATION from now")
    ] = "+5m",
    namespace: Annotated[str | None, typer.Option(help="namespace of every object")] = None,
    storage_class: Annotated[
        str | None, typer.Option(help="for the logs volume (ReadWriteMany)")
    ] = None,
    storage_size: Annotated[str, typer.Option(help="logs volume size")] = "10Gi",
    cpu: Annotated[int, typer.Option(min=1, help="cores per shard pod (= its workers)")] = 2,
    memory: Annotated[str, typer.Option(help="memory per shard pod")] = "2Gi",
    target: Annotated[str | None, TARGET] = None,
    out: Annotated[Path | None, out_option("write here (default: stdout)")] = None,
) -> None:
    """Kubernetes manifests for a sharded run: ConfigMap (scenario, start), logs volume, an
    Indexed Job of shards and the ingest Job that merges them (see deploy/README.md)."""
    import time

    from simd.model.durations import parse_duration_ns
    from simd.model.scenario import read_scenario
    from simd.ops.k8s import RenderOptions, render, scenario_files, secret_command, to_yaml
    from simd.plan.inputs import load_scenario
    from simd.plan.shard import check_start_at, parse_start_at

    now = time.time_ns()
    if start_at.startswith("+"):
        try:
            start_ns = now + parse_duration_ns(start_at[1:])
        except ValueError as exc:
            raise UserError(f"--start-at {start_at!r}: {exc}") from None
    else:
        start_ns = parse_start_at(start_at)
    check_start_at(start_ns, now)
    check_run_id(run_id)
    raw = read_scenario(scenario, overrides(target, None, None))
    loaded = load_scenario(scenario, overrides(target, None, None))
    opts = RenderOptions(
        shards=shards,
        image=image,
        run_id=run_id,
        start_at_ns=start_ns,
        lead_s=(start_ns - now) / 1e9,
        namespace=namespace,
        storage_class=storage_class,
        storage_size=storage_size,
        cpu=cpu,
        memory=memory,
        target=target,
    )
    manifests = render(scenario, raw, loaded, opts)
    text = to_yaml(manifests)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        sys.stderr.write(f"simd: wrote {len(manifests)} objects to {out}\n")
    cmd = secret_command(manifests, scenario_files(scenario, raw))
    if cmd:
        sys.stderr.write(f"simd: the pods read secrets from a Secret; create it first:\n  {cmd}\n")
