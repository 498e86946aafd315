from __future__ import annotations

import json
from pathlib import Path

from workers.sinks.log import LogSink
from workhooks.config.loading import parse_config
from workhooks.core.events import Event
from workhooks.platforms.wordy import callback as wordy

HOSTILE = "a\u2028b\u2029c\u0085d\u009b31me\u007ff\u202eg\u0080h"


def test_line_breaks_and_terminal_controls_are_escaped_and_the_json_is_the_same(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    settings = parse_config(f"sinks:\n  archive: {{type: log, path: '{path}'}}\n", {}).sinks["archive"]
    body = json.dumps({"username": "Ed", "message": HOSTILE, "job_id": 4}).encode()
    event = Event.from_callback("wordy-main", wordy.parse(body, None))
    LogSink(settings).send(event)  # type: ignore[arg-type]
    written = path.read_text(encoding="utf-8")
    assert written.count("\n") == 1 and len(written.splitlines()) == 1  # str.splitlines breaks on U+2028/U+0085
    assert all(ord(char) < 0x7F or ord(char) > 0x9F for char in written)
    assert not set(written) & set("\u2028\u2029\u202e")
    assert "\\u2028" in written and "\\u009b" in written
    assert json.loads(written) == json.loads(event.to_json())
