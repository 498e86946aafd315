"""No configured secret anywhere, in any spelling: callbacks carry every secret of every source, sink and
the admin token, spelled as PHP, Rails, XML and form encoders spell them; then every Redis value, the AOF,
every log line, every delivered body, every admin answer and /metrics are searched (#16, item 6).

What stays (docs/reliability.md, "Hostile input"): a secret spelled in a way no decoder here reads in a
body that does not parse (e.g. non-ASCII \\u escapes in broken JSON) is kept as sent, in the quarantine.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import redis

from tests.emulators.slack import SlackApi
from tests.servers import CaptureServer, KillableRedis, Service, wait_until
from workhooks.store import keys

pytestmark = pytest.mark.slow

WORDY_TOKEN = "wordy-callback-token-Zq81Tn"
WORDY_KEY = "wordy-api-key-Hy72LmQ"
SWF_KEY = "swf-api-key-Pw93Xc/k"
SIGNING = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HEADER = "Bearer sink/header-Rt55&x"
ADMIN = "admin/token-Gf66Vn<plenty"
BOT = "xoxb-5550001-5550002-bot/Tk33&q"
SLACK_SIGNING = "slack-signing-secret-Ws71Pp"
SECRETS = [WORDY_TOKEN, WORDY_KEY, SWF_KEY, SIGNING, HEADER, ADMIN, BOT, SLACK_SIGNING]


def config(sink: CaptureServer, slack: SlackApi) -> str:
    return f"""
sources:
  wordy-main: {{platform: wordy, token: {WORDY_TOKEN}, api_key: {WORDY_KEY}}}
  swf: {{platform: sharedworkforce, api_key: "{SWF_KEY}"}}
sinks:
  erp:
    type: webhook
    url: {sink.url}
    secret: {SIGNING}
    headers: {{Authorization: "{HEADER}"}}
    allow_private: true
    retry_intervals: [1]
  team:
    type: slack_app
    bot_token: "{BOT}"
    signing_secret: {SLACK_SIGNING}
    channel: C0000000001
    base_url: {slack.base_url}
    allow_private: true
    rate_limit: {{per_second: 50, burst: 10}}
routes: [{{to: [erp, team]}}]
admin: {{token: "{ADMIN}"}}
"""


def json_spellings(secret: str) -> list[str]:
    """Inside a JSON string: plain (escaped as JSON requires), every character as \\uXXXX, PHP's \\/ and Rails'."""
    plain = json.dumps(secret)[1:-1]
    php = plain.replace("/", "\\/")
    rails = plain.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e").replace("-", "\\u002d")
    return [plain, "".join(f"\\u{ord(c):04x}" for c in secret), php, rails]


def partly_percent_encoded(secret: str) -> str:
    return "".join(
        quote(c, safe="") if i % 2 else (c if c.isalnum() else quote(c, safe="")) for i, c in enumerate(secret)
    )


def xml_spelled(secret: str) -> str:
    return "".join(f"&#{ord(c)};" if i % 2 else f"&#x{ord(c):x};" for i, c in enumerate(secret))


def all_spellings(secret: str) -> set[bytes]:
    """What a leak would look like: the secret and its encodings, and its distinctive last part."""
    forms = {
        secret,
        *json_spellings(secret),
        quote(secret, safe=""),
        partly_percent_encoded(secret),
        xml_spelled(secret),
    }
    return {form.encode() for form in forms} | {secret[-8:].encode()}


def redis_values(client: redis.Redis) -> bytes:
    found: list[bytes] = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        found.append(key)
        if kind == b"string":
            found.append(client.get(key) or b"")
        elif kind == b"hash":
            found += [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == b"list":
            found += client.lrange(key, 0, -1)
        elif kind == b"set":
            found += list(client.smembers(key))
        elif kind == b"zset":
            found += [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            found += [repr(client.xrange(key)).encode()]
    return b"\n".join(found)


def decoded_json(text: bytes) -> bytes:
    """JSON documents in `text` (one a line, or the whole) read back, so an escape hides nothing."""
    out = []
    for line in text.splitlines() or [text]:
        try:
            out.append(json.dumps(json.loads(line), ensure_ascii=False).encode("utf-8", "surrogatepass"))
        except (ValueError, UnicodeError):
            continue
    return b"\n".join(out)


def context(text: bytes, spelling: bytes) -> bytes:
    """Around a leak, for the failure message."""
    at = text.find(spelling)
    return text[max(0, at - 80) : at + len(spelling) + 40] if at >= 0 else b"(in the decoded JSON)"


def test_no_configured_secret_survives_in_any_spelling_anywhere(tmp_path: Path, sink_server: CaptureServer) -> None:
    store = KillableRedis(tmp_path / "redis", appendfsync="always")
    slack = SlackApi(token=BOT).start()
    service = Service(tmp_path, store.url, config(sink_server, slack))
    try:
        every_json = " ".join(spelling for secret in SECRETS for spelling in json_spellings(secret))
        every_form = "+".join(partly_percent_encoded(secret) for secret in SECRETS)
        every_xml = " ".join(xml_spelled(secret) for secret in SECRETS)
        hook, form = f"/hooks/wordy-main/{WORDY_TOKEN}", "application/x-www-form-urlencoded"
        swf_json = {"task": {"id": 4, "callback_params": {"note": " ".join(SECRETS)},
                             "responses": [{"id": 1, "answer": SIGNING}]}}  # fmt: skip
        swf_xml = (f"<task><id>5</id><api_key>{xml_spelled(SWF_KEY)}</api_key><responses><response><id>1</id>"
                   f"<answer>{every_xml}</answer></response></responses></task>")  # fmt: skip
        answers = [
            service.post(hook, f'{{"username": "Editor X", "message": "{every_json}", "job_id": 1}}'.encode()),
            service.post(hook, f"username=Editor+X&job_id=2&message={every_form}".encode(), form),
            service.post(hook, json.dumps({"status": ["aer", WORDY_KEY], "job_id": 3}).encode()),  # an unknown status
            service.post("/hooks/swf", json.dumps(swf_json).encode(), **{"x-api-key": SWF_KEY}),
            service.post("/hooks/swf", swf_xml.encode(), "application/xml"),
            service.post(hook, f'{{"message": "{every_json}", "job_id": '.encode()),  # cut short: quarantined
            service.post(hook, json.dumps({"status": ["aer", "acr"], "job_id": ADMIN}).encode()),  # a bad id: 400
            service.post(f"/hooks/wordy-main/{WORDY_KEY}", b'{"status": ["aer", "acr"], "job_id": 6}'),  # not a token
        ]
        assert [answer.status_code for answer in answers] == [202, 202, 202, 202, 202, 400, 400, 401], [
            answer.text for answer in answers
        ]
        sink_server.wait_for(5, timeout=30)
        wait_until(lambda: len(slack.calls("chat.postMessage")) >= 5, 30, "five messages in Slack")
        with httpx.Client(base_url=service.base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10) as admin:
            responses = [admin.get("/admin/api/events?limit=200")]
            for item in responses[0].json()["items"]:
                responses.append(admin.get(f"/admin/api/events/{item['id']}"))
                responses.append(
                    admin.get(f"/admin/api/state/{item['source'].removeprefix('/sources/')}/{item['subject']}")
                )
            responses += [
                admin.get(f"/admin/api/{path}") for path in ("quarantine", "dead-letters", "mismatches", "health")
            ]
            assert all(response.status_code == 200 for response in responses), [r.text for r in responses]
        time.sleep(1)  # the workers' last log lines
        client = redis.Redis.from_url(store.url)
        wait_until(lambda: client.llen(keys.INBOX) == 0, what="everything processed")
        places = {
            "redis": redis_values(client),
            "aof": b"".join(path.read_bytes() for path in (tmp_path / "redis").rglob("*") if path.is_file()),
            "logs": service.logs().encode(),
            "delivered": b"\n".join(request.body for request in sink_server.requests),
            "slack": json.dumps([call.args for call in slack.calls()], ensure_ascii=False).encode(),
            "admin": b"\n".join(response.content for response in responses),
            "metrics": httpx.get(f"{service.base}/metrics").content,
            "answers": b"\n".join(answer.content for answer in answers),
        }
        client.close()
        leaks = [
            (where, spelling, context(text, spelling))
            for where, text in places.items()
            for secret in SECRETS
            for spelling in all_spellings(secret)
            if spelling in text or spelling in decoded_json(text)
        ]
        assert leaks == []
        assert b"[REDACTED]" in places["delivered"] and b"[REDACTED]" in places["redis"]
        assert b"[REDACTED]" in places["slack"]  # the messages that carried secrets reached Slack without them
    finally:
        service.stop()
        slack.stop()
        store.stop()
