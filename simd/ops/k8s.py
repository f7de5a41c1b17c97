"""`simd k8s render`: Kubernetes manifests that run a scenario as N shards (deploy/README.md).

The objects, in the order they are applied:
1. ConfigMap `<base>-scenario`: the scenario file and the files it names (payload data,
   recordings, CA certificates), the run id and the shared start epoch (editable before the
   Jobs start: the pods read both from it).
2. PersistentVolumeClaim `<base>-logs` (ReadWriteMany): shard I writes RUNS/ID/shard-I/ there.
3. Job `<base>-shards`: completionMode Indexed, completions = parallelism = N; the pod of index
   I runs `simd run --shard I/N --start-at T`. A pod that replaces a failed one resumes its
   shard's folder (`simd run --resume`) on the same t=0. /metrics on port `metrics`.
4. Job `<base>-ingest`: follows the shard folders into RUNS/ID/results.duckdb (missing shards
   are named as gaps), then prints the report and writes RUNS/ID/report.html.

Secrets never go into these manifests: the environment variables a scenario names
(`password_env`, `${VAR}` in headers) and its secret files (`token_file`, `tls.key_file`) come
from a Secret `<base>-secrets` the user creates (the renderer says how).
"""

from __future__ import annotations

import base64
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simd.errors import UserError
from simd.model.scenario import ENV_REF, JsonLinesPayload, Scenario
from simd.model.secrets import redact_text, url_credentials
from simd.plan.shard import default_run_id
from simd.transports import scheme_of

LOG_ROOT = "/data"  # the logs volume
RUNS = f"{LOG_ROOT}/runs"
SCENARIO_ROOT = "/simd"  # the scenario volume: the scenario's folder tree, as in the repo
METRICS_PORT = 9108
CONFIGMAP_LIMIT = 1_000_000  # bytes: Kubernetes refuses a ConfigMap over 1 MiB
USER_ID = 10001  # the Containerfile's user; fsGroup makes the logs volume writable for it


@dataclass
class ScenarioFiles:
    """The files a scenario names, relative to the common folder of it and the scenario."""

    root: Path
    scenario: str  # the scenario file, relative to root
    files: dict[str, Path] = field(default_factory=dict)  # relative path -> file (ConfigMap)
    secret_files: dict[str, Path] = field(default_factory=dict)  # relative path -> file
    secret_env: list[str] = field(default_factory=list)  # environment variable names


def scenario_files(path: Path, raw: Scenario) -> ScenarioFiles:
    """What a pod needs beside the scenario file: the files it names (relative to it), split
    into plain files (ConfigMap) and secret ones (Secret), and the secret variables."""
    base = path.resolve().parent
    named: list[tuple[str, str, bool]] = []  # (where, name as written, secret)
    env: list[str] = []
    for gi, g in enumerate(raw.fleet):
        where = f"fleet[{gi}]"
        if g.replay is not None:
            named.append((f"{where}.replay.recording", g.replay.recording, False))
        if g.mqtt.token_file:
            named.append((f"{where}.mqtt.token_file", g.mqtt.token_file, True))
        if g.mqtt.password_env:
            env.append(g.mqtt.password_env)
        for m in g.resolved_messages() if g.replay is None else []:
            if isinstance(m.payload, JsonLinesPayload):
                named.append((f"{where}.payload.file", m.payload.file, False))
        for r in [g.http, *g.requests, *g.journey]:
            for v in r.headers.values():
                env.extend(ENV_REF.findall(v))
    for key in ("ca_file", "cert_file", "key_file"):
        name = getattr(raw.tls, key)
        if name:
            named.append((f"tls.{key}", name, key == "key_file"))
    resolved = []
    for where, name, secret in named:
        if Path(name).is_absolute():
            raise UserError(
                f"{path}: {where}: {name!r} is absolute; name it relative to the scenario so "
                "it can be shipped beside it"
            )
        f = (base / name).resolve()
        if not f.is_file():
            raise UserError(f"{path}: {where}: {name!r} not found (looked in {f})")
        resolved.append((f, secret))
    root = Path(os.path.commonpath([base, *(f.parent for f, _ in resolved)]))
    out = ScenarioFiles(root, path.resolve().relative_to(root).as_posix())
    for f, secret in resolved:
        (out.secret_files if secret else out.files)[f.relative_to(root).as_posix()] = f
    out.secret_env = sorted(set(env))
    return out


@dataclass(frozen=True)
class RenderOptions:
    shards: int
    image: str
    run_id: str | None = None
    start_at_ns: int = 0
    lead_s: float = 0.0  # how far ahead of now start_at_ns lies (deadlines and timeouts)
    namespace: str | None = None
    storage_class: str | None = None
    storage_size: str = "10Gi"
    cpu: int = 2  # per shard pod; also its workers
    memory: str = "2Gi"
    pull_policy: str = "IfNotPresent"
    target: str | None = None  # overrides the scenario's target (as `simd run --target`)


def _slug(text: str, limit: int = 40) -> str:
    """A DNS-1123 label piece: lowercase letters, digits and '-'."""
    s = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return s[:limit].rstrip("-") or "run"


def _refuse(path: Path, raw: Scenario, scenario: Scenario, opts: RenderOptions) -> None:
    """What cannot be rendered: an embedded broker, credentials in a URL, a shard count."""
    if scheme_of(scenario.target) == "embedded":
        raise UserError(
            f"{path}: target embedded would give every shard a broker of its own; set target "
            "to the broker or API every shard should load"
        )
    for where, url in (("--target", opts.target or ""), (f"{path}: target", raw.target)):
        if url_credentials(url)[0] is not None:
            raise UserError(
                f"{where} {redact_text(url)!r}: credentials in a URL would be written into the "
                "manifests in clear; give them as [fleet.mqtt] username and password_env "
                "(rendered as a Secret)"
            )
    if not 1 <= opts.shards <= scenario.device_count:
        raise UserError(f"--shards {opts.shards}: use 1..{scenario.device_count} (one per device)")


@dataclass(frozen=True)
class _Names:
    """The run's object names and labels (`base` prefixes every object's name)."""

    base: str
    labels: dict[str, str]
    namespace: str | None

    def meta(self, name: str, component: str | None = None) -> dict[str, Any]:
        m: dict[str, Any] = {"name": name, "labels": dict(self.labels)}
        if component:
            m["labels"]["app.kubernetes.io/component"] = component
        if self.namespace:
            m["namespace"] = self.namespace
        return m


def _configmap(
    path: Path, names: _Names, run_id: str, opts: RenderOptions, keys: dict[str, str],
    files: ScenarioFiles,
) -> dict[str, Any]:  # fmt: skip
    """The scenario file, the files it names and the run's id and start, in a ConfigMap."""
    binary = {keys[rel]: base64.b64encode(files.files[rel].read_bytes()).decode() for rel in keys}
    text = path.read_text()
    size = len(text) + sum(len(v) for v in binary.values())
    if size > CONFIGMAP_LIMIT:
        raise UserError(
            f"{path}: the scenario and its files take {size:,} bytes, over a ConfigMap's 1 MiB; "
            "build them into the image (Containerfile) and point the scenario there"
        )
    configmap: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": names.meta(f"{names.base}-scenario"),
        "data": {
            "scenario.toml": text,
            "run-id": run_id,
            "start-at": f"{opts.start_at_ns / 1e9:.3f}",
        },
    }
    if binary:
        configmap["binaryData"] = binary
    return configmap


def _pvc(names: _Names, opts: RenderOptions) -> dict[str, Any]:
    """The logs volume every shard writes its folder to and the ingest job reads."""
    pvc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": names.meta(f"{names.base}-logs"),
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": opts.storage_size}},
        },
    }
    if opts.storage_class:
        pvc["spec"]["storageClassName"] = opts.storage_class
    return pvc


def _pod_parts(
    names: _Names, opts: RenderOptions, keys: dict[str, str], files: ScenarioFiles
) -> _PodParts:
    """Volumes (the scenario projected from the ConfigMap and Secret; the logs), mounts and
    environment every pod shares."""
    base, secret_name = names.base, f"{names.base}-secrets"
    sources: list[dict[str, Any]] = [
        {
            "configMap": {
                "name": f"{base}-scenario",
                "items": [{"key": "scenario.toml", "path": files.scenario}]
                + [{"key": keys[rel], "path": rel} for rel in sorted(keys)],
            }
        }
    ]
    if files.secret_files:
        items = [{"key": _secret_key(rel), "path": rel} for rel in sorted(files.secret_files)]
        sources.append({"secret": {"name": secret_name, "items": items}})
    volumes = [
        {"name": "scenario", "projected": {"sources": sources}},
        {"name": "logs", "persistentVolumeClaim": {"claimName": f"{base}-logs"}},
    ]
    mounts = [
        {"name": "scenario", "mountPath": SCENARIO_ROOT, "readOnly": True},
        {"name": "logs", "mountPath": LOG_ROOT},
    ]
    env = [
        _from_configmap("SIMD_RUN_ID", f"{base}-scenario", "run-id"),
        _from_configmap("SIMD_START_AT", f"{base}-scenario", "start-at"),
    ] + [
        {"name": v, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": v}}}
        for v in files.secret_env
    ]
    return _PodParts(opts.image, opts.pull_policy, env, mounts, volumes)


def _shard_script(opts: RenderOptions, files: ScenarioFiles) -> str:
    """A shard pod's command: its own shard of the run, or (a replacement pod) resume it."""
    return "\n".join(
        [
            'ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # one socket per device',
            f'dir="{RUNS}/$SIMD_RUN_ID/shard-$SHARD_INDEX"',
            'if [ -f "$dir/run.json" ]; then  # a replacement pod: go on from the log',
            f'  exec simd run --resume "$dir" --status-host 0.0.0.0 --status-port {METRICS_PORT}'
            " --no-progress",
            "fi",
            f'exec simd run "{SCENARIO_ROOT}/{files.scenario}" --shard "$SHARD_INDEX/{opts.shards}"'
            ' --start-at "$SIMD_START_AT" --run-id "$SIMD_RUN_ID"'
            f" --runs-dir {RUNS} --workers {opts.cpu} --status-host 0.0.0.0"
            f" --status-port {METRICS_PORT} --no-progress"
            + (f" --target {shlex.quote(opts.target)}" if opts.target else ""),
        ]
    )


def _shards_job(
    names: _Names, pod: _PodParts, opts: RenderOptions, files: ScenarioFiles, run_s: float
) -> dict[str, Any]:
    """The Indexed Job: one pod per shard, each scraped for /metrics."""
    n = opts.shards
    index_env = {
        "name": "SHARD_INDEX",
        "valueFrom": {
            "fieldRef": {
                "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
            }
        },
    }
    return pod.job(
        names.meta(f"{names.base}-shards", "shard"),
        {
            "completionMode": "Indexed",
            "completions": n,
            "parallelism": n,
            "backoffLimit": 2 * n,  # a failed pod is replaced by one that resumes its shard
            "activeDeadlineSeconds": int(opts.lead_s + run_s + 1800),
        },
        restart="Never",
        annotations={
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(METRICS_PORT),
            "prometheus.io/path": "/metrics",
        },
        container=pod.container(
            "shard",
            _shard_script(opts, files),
            [index_env, *pod.env],
            {
                "requests": {"cpu": str(opts.cpu), "memory": opts.memory},
                "limits": {"cpu": str(opts.cpu), "memory": opts.memory},
            },
            ports=[{"name": "metrics", "containerPort": METRICS_PORT}],
        ),
    )


def _ingest_job(names: _Names, pod: _PodParts, opts: RenderOptions, run_s: float) -> dict[str, Any]:
    """The follower: ingests the shards as they write, then reports, when the run has ended."""
    wait_s = int(opts.lead_s + run_s + 1800)
    ingest_script = (
        f'simd ingest "{RUNS}/$SIMD_RUN_ID" --follow --interval 5s --timeout {wait_s}s'
        f' && simd report "{RUNS}/$SIMD_RUN_ID"'
    )
    return pod.job(
        names.meta(f"{names.base}-ingest", "ingest"),
        {
            "backoffLimit": 3,  # a restarted follower goes on from the offsets it committed
            "activeDeadlineSeconds": wait_s + 1800,
        },
        restart="OnFailure",
        container=pod.container(
            "ingest",
            ingest_script,
            pod.env[:2],
            {
                "requests": {"cpu": "1", "memory": opts.memory},
                "limits": {"memory": opts.memory},
            },
        ),
    )


def render(path: Path, raw: Scenario, scenario: Scenario, opts: RenderOptions) -> list[dict]:
    """The manifests (as dicts, apply order) for `raw` (the file as written) run in shards;
    `scenario` is the same file loaded (replays expanded) for its device count and duration."""
    _refuse(path, raw, scenario, opts)
    run_id = opts.run_id or default_run_id(scenario.name, opts.start_at_ns)
    base = f"simd-{_slug(run_id)}"
    labels = {
        "app.kubernetes.io/name": "simd",
        "app.kubernetes.io/instance": base,
        "simd/run": _slug(run_id, 63),
    }
    names = _Names(base, labels, opts.namespace)
    files = scenario_files(path, raw)
    keys = {rel: f"file-{i}" for i, rel in enumerate(sorted(files.files))}
    pod = _pod_parts(names, opts, keys, files)
    run_s = scenario.duration_ns / 1e9
    return [
        _configmap(path, names, run_id, opts, keys, files),
        _pvc(names, opts),
        _shards_job(names, pod, opts, files, run_s),
        _ingest_job(names, pod, opts, run_s),
    ]


@dataclass(frozen=True)
class _PodParts:
    """What the shard and ingest pods share: image, environment, mounts, volumes, user."""

    image: str
    pull_policy: str
    env: list[dict[str, Any]]
    mounts: list[dict[str, Any]]
    volumes: list[dict[str, Any]]

    def container(
        self,
        name: str,
        script: str,
        env: list[dict[str, Any]],
        resources: dict[str, Any],
        ports: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        c: dict[str, Any] = {
            "name": name,
            "image": self.image,
            "imagePullPolicy": self.pull_policy,
            "command": ["/bin/sh", "-c", script],
            "env": env,
        }
        if ports:
            c["ports"] = ports
        c["resources"] = resources
        c["volumeMounts"] = self.mounts
        return c

    def job(
        self,
        metadata: dict[str, Any],
        spec: dict[str, Any],
        restart: str,
        container: dict[str, Any],
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        template_meta: dict[str, Any] = {"labels": metadata["labels"]}
        if annotations:
            template_meta["annotations"] = annotations
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": metadata,
            "spec": {
                **spec,
                "template": {
                    "metadata": template_meta,
                    "spec": {
                        "restartPolicy": restart,
                        # not root; fsGroup makes the logs volume writable for the image's user
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": USER_ID,
                            "fsGroup": USER_ID,
                        },
                        "containers": [container],
                        "volumes": self.volumes,
                    },
                },
            },
        }


def _from_configmap(var: str, name: str, key: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"configMapKeyRef": {"name": name, "key": key}}}


def _secret_key(rel: str) -> str:
    """A Secret key for a secret file (keys allow letters, digits, '-', '_' and '.')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", rel)


def secret_command(manifests: list[dict], files: ScenarioFiles) -> str | None:
    """The kubectl command that creates the Secret the manifests expect, or None if none."""
    if not files.secret_env and not files.secret_files:
        return None
    name = manifests[0]["metadata"]["name"].removesuffix("-scenario") + "-secrets"
    ns = manifests[0]["metadata"].get("namespace")
    parts = ["kubectl create secret generic", name]
    if ns:
        parts.append(f"-n {ns}")
    parts += [f'--from-literal={v}="${v}"' for v in files.secret_env]
    parts += [
        f"--from-file={_secret_key(rel)}={f}" for rel, f in sorted(files.secret_files.items())
    ]
    return " ".join(parts)


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (the scenario, the scripts) and no anchors: readable
    manifests."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(manifests: list[dict]) -> str:
    """One multi-document YAML stream, ready for `kubectl apply -f -`."""
    return yaml.dump_all(manifests, Dumper=_Dumper, sort_keys=False, width=100)
