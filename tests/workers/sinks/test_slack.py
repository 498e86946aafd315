from __future__ import annotations

from workers.messages import render
from workers.sinks.slack import payload
from workhooks.core.events import Event
from workhooks.platforms.wordy import callback as wordy


def test_block_kit_with_plain_text_fallback_and_link() -> None:
    event = Event.from_callback(
        "wordy-main", wordy.parse(b'{"username": "Ed", "message": "a <b> & c", "job_id": 3}', None)
    ).with_phase("in_progress")
    body = payload(event, render(event))
    assert body["text"] == "Wordy job 3: new message from Ed\na <b> & c\nhttps://wordy.com/jobs/3/"
    kinds = [block["type"] for block in body["blocks"]]
    assert kinds == ["header", "section", "context", "actions"]
    assert body["blocks"][0]["text"] == {"type": "plain_text", "text": "Wordy job 3: new message from Ed"}
    assert body["blocks"][1]["text"]["text"] == "a &lt;b&gt; &amp; c"
    assert body["blocks"][2]["elements"][0]["text"] == "Wordy · job/3 · in progress"
    assert body["blocks"][3]["elements"][0]["url"] == "https://wordy.com/jobs/3/"
