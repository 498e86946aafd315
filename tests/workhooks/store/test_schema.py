"""Stored data outlives code: the layout version, `workhooks migrate`, and data written by the previous release."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import FIXTURES
from tests.servers import BIN, ROOT, process_env
from workers import eventlog, state, work
from workhooks.cli import main
from workhooks.config.loading import load_config
from workhooks.core.events import Event
from workhooks.platforms.wordy import callback as wordy
from workhooks.store import keys, quarantine, schema
from workhooks.store.ingest import Accepted, Ingest, prepare

PREVIOUS_RELEASE = FIXTURES / "store" / "v0.json"  # written by 0.1.0 (commit 8c25f96); see its "written_by"


def restore(rdb: redis.Redis, dump: dict[str, Any]) -> None:
    """Write every key of a dump exactly as the release that made it left it."""
    for key, item in dump["keys"].items():
        value, kind = item["value"], item["type"]
        raw = base64.b64decode
        if kind == "string":
            rdb.set(key, raw(value))
        elif kind == "hash":
            rdb.hset(key, mapping={field: raw(text) for field, text in value.items()})
        elif kind == "list":
            rdb.rpush(key, *(raw(text) for text in value))
        elif kind == "set":
            rdb.sadd(key, *(raw(text) for text in value))
        elif kind == "zset":
            rdb.zadd(key, {raw(member): score for member, score in value})


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "workhooks.yaml"
    path.write_text(f"""
sources:
  wordy-main: {{platform: wordy, token: tok-0123456789abcdef}}
  swf: {{platform: sharedworkforce, api_key: key-0123456789abcdef}}
sinks:
  archive: {{type: log, path: {tmp_path / "archive.jsonl"}}}
routes: [{{to: [archive]}}]
""")
    return path


def workhooks(redis_url: str, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "workhooks"), *args], env=process_env(redis_url, config), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_an_empty_store_is_marked_with_the_current_layout_and_migrating_twice_changes_nothing(
    rdb: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert schema.version(rdb) is None
    assert main(["migrate"]) == 0 and rdb.get(keys.SCHEMA) == str(schema.CURRENT).encode()
    assert main(["migrate"]) == 0 and "nothing to do" in capsys.readouterr().out
    assert main(["migrate", "--check"]) == 0


def test_data_written_by_the_previous_release_is_read_and_processed_after_migrate(
    rdb: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    dump = json.loads(PREVIOUS_RELEASE.read_text())
    restore(rdb, dump)
    config = config_file(tmp_path)
    assert schema.version(rdb) == 0  # data, and no version: the release before versions
    checked = workhooks(redis_url, config, "migrate", "--check")
    assert checked.returncode == 1 and "layout 0" in checked.stdout

    migrated = workhooks(redis_url, config, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert (
        "layout 0 -> 1" in migrated.stdout and "layout 1 -> 2" in migrated.stdout and "layout 2 -> 3" in migrated.stdout
    )
    assert schema.version(rdb) == schema.CURRENT
    # The job's lane starts where the old data left it: the accepted, still waiting aer -> acr.
    assert rdb.hget(keys.lanes("wordy-main", "job/77"), "status:value") == b"acr"
    # ... and it is indexed by the phase its state shows (aer: in progress), for reminders.
    assert rdb.zscore(keys.phase_index("in_progress"), keys.subject_member("wordy-main", "job/77")) is not None

    # Read with the new code: the event log, a job's state, the quarantine.
    found, _ = eventlog.find(rdb, eventlog.Filters(), ["archive"], limit=10)
    assert {item.event.id for item in found} == {*dump["processed"], dump["pending"]}
    job = state.load(rdb, "wordy-main", "job/77")
    assert job is not None and job["status"] == "aer" and len(job["messages"]) == 1
    assert [item.source for item in quarantine.list_items(rdb)] == ["swf"]

    # Jobs the old release queued (a drain job, three deliveries) run under the new code's job paths.
    worker = workhooks(redis_url, config, "worker", "--burst")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    delivered = [json.loads(line)["id"] for line in (tmp_path / "archive.jsonl").read_text().splitlines()]
    assert sorted(delivered) == sorted([*dump["processed"], dump["pending"]])
    job = state.load(rdb, "wordy-main", "job/77")
    assert job is not None and job["status"] == "acr"  # the pending aer -> acr was applied
    member = keys.subject_member("wordy-main", "job/77")  # a new stay: awaiting the customer, no longer in progress
    assert rdb.zscore(keys.phase_index("in_progress"), member) is None
    assert rdb.zscore(keys.phase_index("awaiting_client"), member) is not None
    assert "Traceback" not in worker.stdout + worker.stderr

    # Wordy resends the last callback it made before the upgrade: the same event. What follows is new.
    def callback(previous: str, new: str) -> Accepted:
        body = json.dumps({"status": [previous, new], "job_id": 77}).encode()
        event = Event.from_callback("wordy-main", wordy.parse(body, "application/json"))
        return Ingest().submit_sync(rdb, prepare(event, "application/json", body))

    assert callback("aer", "acr") == Accepted(False, dump["pending"])
    rejected = callback("acr", "aer")
    assert rejected.created and rejected.id not in dump["processed"]
    assert callback("aer", "acr").created  # the editor's second return: a new occurrence


def test_migrating_twice_seeds_nothing_twice(rdb: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    restore(rdb, json.loads(PREVIOUS_RELEASE.read_text()))
    config = config_file(tmp_path)
    assert workhooks(redis_url, config, "migrate").returncode == 0
    lanes = rdb.hgetall(keys.lanes("wordy-main", "job/77"))
    again = workhooks(redis_url, config, "migrate")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert rdb.hgetall(keys.lanes("wordy-main", "job/77")) == lanes


def test_processes_refuse_data_newer_than_they_read_and_say_what_to_run(
    rdb: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    rdb.set(keys.SCHEMA, schema.CURRENT + 1)
    for command in (["worker", "--burst"], ["migrate"]):
        refused = workhooks(redis_url, config_file(tmp_path), *command)
        assert refused.returncode in (1, 2), command
        assert "written by a newer workhooks" in refused.stderr
    assert rdb.get(keys.SCHEMA) == str(schema.CURRENT + 1).encode()  # nothing was changed


def test_subjects_the_previous_release_stored_are_indexed_by_phase_and_deadline_after_migrate(
    rdb: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """Layout 2 (the release before reminders) kept states without stays; migrate builds the indexes."""
    wordy_job = {"subject": "job/9", "source": "wordy-main", "events": ["evt_" + "a" * 32], "status": "acr",
                 "status_label": "awaiting customer response", "updated_at": "2026-11-30T10:00:00.000Z"}  # fmt: skip
    rdb.set(keys.event("evt_" + "a" * 32), json.dumps({"id": "evt_" + "a" * 32, "type": "wordy.job.status_changed"}))
    polled = {"subject": "order/00007848", "source": "orders", "events": [],  # recorded silently by a first poll
              "current": {"order_number": "00007848", "status": "In Progress"}}  # fmt: skip
    done = {"subject": "task/5", "source": "swf", "events": [], "updated_at": "2026-11-30T10:00:00.000Z"}
    for item in (wordy_job, polled, done):
        rdb.set(keys.state(item["source"], item["subject"]), json.dumps(item), ex=keys.STATE_TTL)  # type: ignore[arg-type]
    rdb.set(keys.SCHEMA, 2)

    migrated = workhooks(redis_url, config_file(tmp_path), "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "layout 2 -> 3" in migrated.stdout and "layout 1" not in migrated.stdout
    job_member = keys.subject_member("wordy-main", "job/9")
    assert rdb.zscore(keys.phase_index("awaiting_client"), job_member) == 1796032800.0  # since its last update
    assert rdb.zscore(keys.phase_index("in_progress"), keys.subject_member("orders", "order/00007848")) is not None
    assert rdb.zcard(keys.phase_index("queued")) == 0  # the task has no status: not waiting
    job = state.load(rdb, "wordy-main", "job/9")
    assert job is not None and job["stay"] == {"phase": "awaiting_client", "status": "acr", "since": 1796032800.0,
                                               "entry": "evt_" + "a" * 32}  # fmt: skip
    assert rdb.ttl(keys.state("wordy-main", "job/9")) > 0  # the state keeps its expiry

    again = workhooks(redis_url, config_file(tmp_path), "migrate")
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_subjects_the_previous_release_stored_are_in_the_work_view_after_migrate(
    rdb: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """Layout 4 (the release before actions) had no subject index; migrate builds it from the states."""
    stay = {"phase": "awaiting_client", "status": "acr", "since": 1796032800.0, "entry": "evt_" + "b" * 32}
    job = {"subject": "job/12", "source": "wordy-main", "events": ["evt_" + "b" * 32], "status": "acr", "stay": stay,
           "status_label": "awaiting customer response", "updated_at": "2026-11-30T10:00:00.000Z"}  # fmt: skip
    rdb.set(keys.state("wordy-main", "job/12"), json.dumps(job), ex=keys.STATE_TTL)
    rdb.set(keys.SCHEMA, 4)
    assert work.rows(rdb, load_config(str(config_file(tmp_path)))) == []  # before: not indexed

    migrated = workhooks(redis_url, config_file(tmp_path), "migrate")
    assert migrated.returncode == 0 and "layout 4 -> 5" in migrated.stdout, migrated.stdout + migrated.stderr
    (row,) = work.rows(rdb, load_config(str(config_file(tmp_path))), phase="awaiting_client")
    assert (row["subject"], row["status"], row["since"]) == ("job/12", "awaiting customer response", 1796032800.0)
    assert row["actions"] == []  # this source has no Wordy API key: nothing can be done from here
    again = workhooks(redis_url, config_file(tmp_path), "migrate")
    assert again.returncode == 0 and "nothing to do" in again.stdout
