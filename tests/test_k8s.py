"""`simd k8s render`, the Containerfile and deploy/README.md."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from simd.plan.shard import parse_start_at
from tests.conftest import REPO, simd, sql, write_scenario

MODELS = {"ConfigMap": "V1ConfigMap", "PersistentVolumeClaim": "V1PersistentVolumeClaim",
          "Job": "V1Job"}  # fmt: skip

SCENARIO = """
name = "fleet"
seed = 5
duration = "2s"
target = "mqtt://broker.example:1883"

[[fleet]]
name = "meters"
count = 12
rate = 3.0
mqtt = { username = "meter", password_env = "METER_PASSWORD", token_file = "secrets/tokens.txt" }

[[fleet]]
name = "replayed"
replay = { recording = "../recordings/sample.simrec", speed = 4.0 }
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scenario in scenarios/ naming a recording in ../recordings and a secret token file."""
    (tmp_path / "scenarios" / "secrets").mkdir(parents=True)
    (tmp_path / "recordings").mkdir()
    shutil.copy(REPO / "recordings" / "sample.simrec", tmp_path / "recordings")
    tokens = "\n".join(f"tok-{i}-s3cr3t" for i in range(12))
    (tmp_path / "scenarios" / "secrets" / "tokens.txt").write_text(tokens)
    return write_scenario(tmp_path / "scenarios", SCENARIO, "fleet.toml")


def _render(scenario: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[list, str]:
    r = simd("k8s", "render", str(scenario), "--shards", "3", "--image", "reg.example/simd:1",
             *extra, check=0, env=env or os.environ)  # fmt: skip
    return list(yaml.safe_load_all(r.stdout)), r.stderr


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in docs:
        key = d["kind"] if d["kind"] != "Job" else d["metadata"]["name"].rsplit("-", 1)[1]
        out[key] = d
    return out


def test_manifests_have_the_fields_a_sharded_run_needs(project: Path) -> None:
    """ConfigMap (scenario, its files, run id, start), RWX logs claim, an Indexed Job of N shards
    fed JOB_COMPLETION_INDEX and the shared epoch, and an ingest Job that follows the run."""
    docs, _ = _render(project, "--start-at", "2099-01-01T00:00:00Z", "--run-id", "big-1")
    assert [d["kind"] for d in docs] == ["ConfigMap", "PersistentVolumeClaim", "Job", "Job"]
    k = _by_kind(docs)
    cm = k["ConfigMap"]
    assert cm["data"]["scenario.toml"] == project.read_text()
    assert cm["data"]["run-id"] == "big-1"
    assert parse_start_at(cm["data"]["start-at"]) == parse_start_at("2099-01-01T00:00:00Z")
    (rec_key,) = cm["binaryData"]
    recording = (REPO / "recordings" / "sample.simrec").read_bytes()
    assert base64.b64decode(cm["binaryData"][rec_key]) == recording
    assert k["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]

    job = k["shards"]["spec"]
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == job["parallelism"] == 3
    pod = job["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e["valueFrom"] for e in c["env"]}
    assert env["SHARD_INDEX"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
    assert env["SIMD_START_AT"]["configMapKeyRef"] == {"name": cm["metadata"]["name"],
                                                       "key": "start-at"}  # fmt: skip
    script = c["command"][-1]
    assert '--shard "$SHARD_INDEX/3"' in script and '--start-at "$SIMD_START_AT"' in script
    assert '--run-id "$SIMD_RUN_ID"' in script and "--status-host 0.0.0.0" in script
    assert {"name": "metrics", "containerPort": 9108} in c["ports"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert (
        volumes["logs"]["persistentVolumeClaim"]["claimName"]
        == (k["PersistentVolumeClaim"]["metadata"]["name"])
    )
    items = {i["path"] for s in volumes["scenario"]["projected"]["sources"]
             for i in next(iter(s.values()))["items"]}  # fmt: skip
    # the tree as on disk: the scenario's relative paths resolve the same in the pod
    assert items == {"scenarios/fleet.toml", "recordings/sample.simrec",
                     "scenarios/secrets/tokens.txt"}  # fmt: skip
    assert f'"{mounts["scenario"]}/scenarios/fleet.toml"' in script

    ingest = k["ingest"]["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert "simd ingest" in ingest and "--follow" in ingest and "simd report" in ingest
    labels = job["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "simd"


def test_manifests_match_the_kubernetes_api(project: Path) -> None:
    """Every object survives the Kubernetes client's typed models unchanged: no misspelt or
    misplaced field (a typo such as `completionmode` would be dropped, and fail this)."""
    docs, _ = _render(project)
    api = ApiClient()
    for d in docs:
        model = api._ApiClient__deserialize(d, MODELS[d["kind"]])  # type: ignore[attr-defined]
        assert api.sanitize_for_serialization(model) == d


def test_secrets_stay_out_of_manifests(project: Path) -> None:
    """Password variables and token files come from a Secret: the manifests hold neither, and
    the renderer prints the command that creates the Secret."""
    env = {**os.environ, "METER_PASSWORD": "hunter2-pw"}
    docs, err = _render(project, env=env)
    text = yaml.safe_dump_all(docs)
    assert "hunter2-pw" not in text and "s3cr3t" not in text
    assert "czNjcjN0" not in text  # nor base64 of it
    c = _by_kind(docs)["shards"]["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"] for e in c["env"]}
    secret = refs["METER_PASSWORD"]["secretKeyRef"]["name"]
    assert "kubectl create secret generic " + secret in err
    assert "--from-literal=METER_PASSWORD=" in err and "--from-file=" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--start-at", "1700000000"), "in the past"),
        (("--target", "embedded"), "a broker of its own"),
        (("--shards", "1000"), "use 1.."),
    ],
)
def test_render_refuses_what_cannot_run(project: Path, args: tuple[str, ...], message: str) -> None:
    """A past start, an embedded target or more shards than devices: one line, exit 2."""
    r = simd("k8s", "render", str(project), "--shards", "3", "--image", "x", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_the_rendered_pods_run_and_merge(tmp_path: Path) -> None:
    """The shard pods' and the ingest pod's own scripts, run here against a tree laid out as
    their volumes would be, produce a merged run with every shard present; a shard pod killed
    mid-run and replaced resumes its shard: every planned publish has exactly one row."""
    scenario = write_scenario(tmp_path, """
        name = "podrun"
        seed = 3
        duration = "3s"
        target = "null:"
        [[fleet]]
        name = "d"
        count = 9
        rate = 5.0
    """)  # fmt: skip
    docs, _ = _render(scenario, "--start-at", "+5s", "--cpu", "1")
    k = _by_kind(docs)
    root, data = tmp_path / "pod-simd", tmp_path / "pod-data"
    for src in k["shards"]["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]:
        for item in src["configMap"]["items"]:
            dest = root / item["path"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(k["ConfigMap"]["data"][item["key"]])

    def script(job: str) -> str:
        s = k[job]["spec"]["template"]["spec"]["containers"][0]["command"][-1]
        s = s.replace("/simd/", f"{root}/").replace("/data/", f"{data}/")
        # three "pods" on one host, and tests stay on loopback: each on a free loopback port
        return s.replace("--status-host 0.0.0.0 --status-port 9108", "--status-port 0")

    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "SIMD_RUN_ID": k["ConfigMap"]["data"]["run-id"],
        "SIMD_START_AT": k["ConfigMap"]["data"]["start-at"],
    }
    ingest = subprocess.Popen(["/bin/sh", "-c", script("ingest")], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip

    def pod(i: int) -> subprocess.Popen[str]:
        return subprocess.Popen(["/bin/sh", "-c", script("shards")],
                                env={**env, "SHARD_INDEX": str(i)}, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)  # fmt: skip

    pods = [pod(i) for i in range(3)]
    run = data / "runs" / env["SIMD_RUN_ID"]
    t0 = parse_start_at(env["SIMD_START_AT"]) / 1e9
    while time.time() < t0 + 1.0:  # shard 1's pod dies a second into the run (node lost)
        time.sleep(0.05)
    os.killpg(pods[1].pid, signal.SIGKILL)
    pods[1].communicate(timeout=30)
    assert json.loads((run / "shard-1" / "run.json").read_text())["state"] == "running"
    pods[1] = pod(1)  # the Job's replacement pod, same index
    for p in [*pods, ingest]:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, out + err
    assert sql(run, "SELECT count(*) FILTER (WHERE present), min(state) FROM shards") == [
        (3, "completed")
    ]
    assert json.loads((run / "shard-1" / "run.json").read_text())["resumes"]
    planned = sql(run, "SELECT planned_publishes FROM runs")[0][0]
    rows, distinct, missed = sql(
        run,
        "SELECT count(*), count(DISTINCT (device, seq)), count(*) FILTER (WHERE status = "
        "'missed') FROM events WHERE kind = 'publish'",
    )[0]
    assert rows == distinct == planned
    assert missed > 0  # due while shard 1 was down; none sent twice, none absent
    assert sql(run, "SELECT DISTINCT worker // 1000 FROM events WHERE status = 'missed'") == [(1,)]
    assert (run / "report.html").is_file()


def test_containerfile_builds_from_the_repository_alone(tmp_path: Path) -> None:
    """Every COPY source of the Containerfile is in the repository, and those files alone
    build the simd wheel with its SQL (what `pip install .` in the image does)."""
    text = (REPO / "Containerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]", text, flags=re.M)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    sources = []
    for line in re.findall(r"^COPY (.+)$", text, flags=re.M):
        *srcs, _dest = line.split()
        sources += srcs
    assert "http" not in " ".join(sources)
    for src in sources:
        path = REPO / src
        assert path.exists(), f"COPY {src}: not in the repository"
        if path.is_dir():
            shutil.copytree(path, ctx / src, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, ctx / src)
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(ctx)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    (wheel,) = (tmp_path / "dist").glob("simd-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"simd/cli/app.py", "simd/ops/k8s.py", "simd/analysis/schema.sql"} <= names


def test_deploy_readme_scrape_config_finds_the_shard_pods(project: Path) -> None:
    """The Prometheus scrape config in deploy/README.md keeps exactly the pods and port the
    rendered Job has, and the metrics it queries are ones /metrics serves."""
    readme = (REPO / "deploy" / "README.md").read_text()
    (block,) = re.findall(r"```yaml\n(scrape_configs:.*?)```", readme, flags=re.S)
    relabel = yaml.safe_load(block)["scrape_configs"][0]["relabel_configs"]
    keep = {r["source_labels"][0]: r["regex"] for r in relabel if r.get("action") == "keep"}
    docs, _ = _render(project)
    pod = _by_kind(docs)["shards"]["spec"]["template"]
    label = keep.pop("__meta_kubernetes_pod_label_app_kubernetes_io_name")
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == label
    port = keep.pop("__meta_kubernetes_pod_container_port_name")
    assert port in {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    import numpy as np
    from prometheus_client import generate_latest
    from prometheus_client.registry import CollectorRegistry

    from simd.runtime.live import LiveState

    live = LiveState(run_id="r", scenario="s", duration_ns=10**9, planned_total=1, groups=["g"],
                     expected_cum=np.ones(1), window_ns=10**9, slo={}, shard="3/8")  # fmt: skip
    registry = CollectorRegistry(auto_describe=False)
    registry.register(live)  # type: ignore[arg-type]
    served = generate_latest(registry).decode()
    assert 'shard="3/8"' in served
    for name in set(re.findall(r"\b(simd_[a-z0-9_]+)\b", readme)):
        family = name.removesuffix("_total")  # counters: named with or without, by version
        assert re.search(rf"^# TYPE ({name}|{family}) ", served, flags=re.M), name
