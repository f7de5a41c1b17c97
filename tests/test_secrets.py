"""Credentials in a target URL log the devices in, and appear in nothing simd writes or prints:
run.json, the event log, results.duckdb, the reports, stdout and stderr, k8s manifests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from simd.model.secrets import redact, redact_text, strip_credentials, url_credentials
from simd.runtime.broker import EmbeddedBroker
from tests.conftest import need_mosquitto, run_dir_from, simd, sql, write_scenario

CANARY_USER = "canary-user-7Qx"
CANARY_PW = "canary-pw-Zr81"

SCENARIO = """
name = "creds"
duration = "2s"
target = "embedded"
[[fleet]]
name = "g"
count = 4
rate = 2.0
qos = 1
topic = "creds/{device_id}"
[[probe]]
name = "watch"
topic = "creds/#"
"""


def test_redact_takes_out_url_credentials() -> None:
    """Any URL's user information becomes ***, inside any string of a document."""
    doc = {"target": "mqtt://u:p%40ss@h:1883", "note": ["see https://tok@api.example/x"]}
    assert redact(doc) == {"target": "mqtt://***@h:1883", "note": ["see https://***@api.example/x"]}
    assert redact_text("mqtt://h:1883/x@y") == "mqtt://h:1883/x@y"  # an @ after the host
    assert strip_credentials("mqtt://u:p@[::1]:1883") == "mqtt://[::1]:1883"
    assert url_credentials("mqtt://u:p%40ss@h") == ("u", "p@ss")


def test_url_credentials_log_in_and_appear_nowhere(tmp_path: Path) -> None:
    """A mosquitto that refuses anonymous clients: the URL's user name and password log every
    device and the probe in (every publish acked), and neither appears in any file of the run,
    in stdout or in stderr."""
    need_mosquitto()
    pwfile = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pwfile), CANARY_USER, CANARY_PW],
                   check=True)  # fmt: skip
    conf = f"allow_anonymous false\npassword_file {pwfile}\n"
    path = write_scenario(tmp_path, SCENARIO)
    with EmbeddedBroker("mosquitto", extra_conf=conf) as b:
        url = b.url.replace("mqtt://", f"mqtt://{CANARY_USER}:{CANARY_PW}@")
        proc = simd("run", str(path), "--target", url, "--runs-dir", str(tmp_path / "runs"),
                    "--no-progress", check=0)  # fmt: skip
    run_dir = run_dir_from(proc)
    assert sql(
        run_dir, "SELECT status, count(*) FROM events WHERE kind = 'publish' GROUP BY 1"
    ) == [("acked", 16)]
    assert sql(run_dir, "SELECT count(*) FROM events WHERE kind = 'receive'")[0][0] == 16
    assert (run_dir / "report.html").is_file()
    for canary in (CANARY_USER, CANARY_PW):
        for f in run_dir.rglob("*"):
            if f.is_file():
                assert canary.encode() not in f.read_bytes(), f
        assert canary not in proc.stdout + proc.stderr
    assert "mqtt://***@127.0.0.1" in sql(run_dir, "SELECT target FROM runs")[0][0]


def test_url_credentials_are_refused_by_k8s_render(tmp_path: Path) -> None:
    """k8s manifests would hold the URL in clear: render refuses it, without echoing it."""
    path = write_scenario(tmp_path, SCENARIO.replace('"embedded"', '"mqtt://127.0.0.1:1883"'))
    url = f"mqtt://{CANARY_USER}:{CANARY_PW}@broker:1883"
    proc = simd("k8s", "render", str(path), "--shards", "2", "--image", "r/simd:1",
                "--target", url, check=2)  # fmt: skip
    assert "credentials in a URL" in proc.stderr
    assert CANARY_PW not in proc.stdout + proc.stderr and CANARY_USER not in proc.stderr
