"""Each documented behaviour of each emulator, over real HTTP on 127.0.0.1 (stdlib + httpx)."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

import httpx
import pytest

from tests.emulators.base import CallbackSink, Emulator, Outbox, Request, Response
from tests.emulators.sharedworkforce import SAMPLE_CALLBACK_BODY, VENDOR_JSON, VENDOR_XML, SharedWorkforce
from tests.emulators.wordy import Wordy
from tests.emulators.workreduce import WorkReduce
from tests.emulators.worksection import Worksection, sign
from tests.emulators.worktaps import WorkTaps

DOCS = Path("/work/shared/platform-docs")
E = TypeVar("E", bound=Emulator)


def parse_xml(data: bytes) -> ET.Element:
    return ET.fromstring(data)  # noqa: S314 (our own emulator's output)


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    server = CallbackSink().start()
    yield server
    server.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


@contextmanager
def running(emulator: E) -> Iterator[E]:
    """The emulator, started; stopped on the way out, whatever happens inside."""
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


# ---- base ------------------------------------------------------------------------------------------------


class Echo(Emulator):
    def handle(self, request: Request) -> Response:
        if request.path == "/text":
            return Response(200, raw=b"plain", content_type="text/plain", headers={"X-Extra": "1"})
        files = {k: [(u.filename, u.data.decode()) for u in v] for k, v in request.files.items()}
        return Response(200, {"method": request.method, "form": request.form, "json": request.json, "files": files})


@pytest.fixture
def echo() -> Iterator[Echo]:
    with running(Echo()) as emulator:
        yield emulator


def test_base_methods_bodies_headers_and_failures(echo: Echo, http: httpx.Client) -> None:
    assert echo.url.startswith("http://127.0.0.1:")
    assert http.post(echo.url, json={"a": 1}).json()["json"] == {"a": 1}
    assert http.put(echo.url, data={"b": "2"}).json()["form"] == {"b": ["2"]}
    multipart = http.post(echo.url, data={"c": "3"}, files={"f": ("x.txt", b"hi", "text/plain")}).json()
    assert multipart["form"] == {"c": ["3"]} and multipart["files"] == {"f": [["x.txt", "hi"]]}
    assert http.delete(echo.url).json()["method"] == "DELETE"
    text = http.get(echo.url + "/text")
    assert (text.text, text.headers["content-type"], text.headers["x-extra"]) == ("plain", "text/plain", "1")
    echo.fail_next(1, 503, {"down": True}, Retry_After="3")
    failed = http.get(echo.url)
    assert (failed.status_code, failed.json(), failed.headers["retry-after"]) == (503, {"down": True}, "3")
    assert http.get(echo.url).status_code == 200
    assert [r.method for r in echo.requests] == ["POST", "PUT", "POST", "DELETE", "GET", "GET", "GET"]


def test_outbox_flush_drop_resend(sink: CallbackSink) -> None:
    outbox = Outbox()
    outbox.add(sink.url + "/a", b"one", {"Content-Type": "text/plain"})
    outbox.drop_next()
    outbox.add(sink.url + "/b", b"lost", {})
    assert [c.status for c in outbox.flush()] == [200]
    assert [c.body for c in outbox.dropped] == [b"lost"]
    outbox.resend()
    assert [(r.path, r.body) for r in sink.wait_for(2)] == [("/a", b"one"), ("/a", b"one")]
    with pytest.raises(ValueError):
        outbox.add("file:///etc/passwd", b"", {})
    auto = Outbox(auto=True)
    auto.add(sink.url + "/c", b"three", {})
    assert sink.wait_for(3)[-1].path == "/c"
    auto.join()


# ---- Wordy -----------------------------------------------------------------------------------------------


@pytest.fixture
def wordy() -> Iterator[Wordy]:
    with running(Wordy()) as emulator:
        yield emulator


def wordy_client(emulator: Wordy, user: str = "me@example.com") -> httpx.Client:
    return httpx.Client(base_url=emulator.base_url, auth=(user, emulator.api_key), timeout=5)


def test_wordy_basic_auth_key_is_the_password(wordy: Wordy, http: httpx.Client) -> None:
    refused = http.get(wordy.base_url + "account/")
    assert refused.status_code == 401 and set(refused.json()) == {"error", "verbose"}
    assert refused.headers["www-authenticate"].startswith("Basic")
    assert http.get(wordy.base_url + "account/", auth=("me@example.com", "wrong")).status_code == 401
    assert http.get(wordy.base_url + "account/", auth=(wordy.api_key, "")).status_code == 401
    for user in ("", "me@example.com", "anything"):
        with wordy_client(wordy, user) as client:
            assert client.get("account/").json() == {"balance": "$100.00"}
    with running(Wordy(username="me@example.com")) as strict, wordy_client(strict, "me@example.com") as client:
        assert client.get("account/").status_code == 200
        with wordy_client(strict, "") as anonymous:
            assert anonymous.get("account/").status_code == 401


def test_wordy_create_list_info_source_price(wordy: Wordy) -> None:
    with wordy_client(wordy) as client:
        made = client.post("job/create/", files={"json": (None, '{"Title":"Some content"}')}, data={"brief": "b"})
        job = made.json()
        assert made.status_code == 200 and job["status"] == "acp" and job["source_language_name"] == [2, "English (UK)"]
        assert job["cost"] == "$0.48" and job["source_word_count"] == 2
        assert client.get("job/").json() == [job["id"]]
        info = client.get(f"job/{job['id']}/").json()
        assert info["source_language_name"] == "English (UK)" and info["brief"] == "b" and "callback_url" in info
        assert client.get(f"job/{job['id']}/source/").json() == {"Title": "Some content"}
        assert client.get(f"job/{job['id']}/target/").status_code == 404
        upload = client.post("job/create/", files={"fileToUpload": ("somefile.txt", b"three words here", "text/plain")})
        source = client.get(f"job/{upload.json()['id']}/source/")
        assert source.content == b"three words here" and source.headers["content-type"] == "text/plain"
        assert client.post("job/create/", data={"content": "a", "json": '{"a": "b"}'}).status_code == 400
        assert client.post("job/create/", data={"json": '{"a": {"nested": 1}}'}).status_code == 400
        assert client.post("job/price/", data={"content": "one two three four"}).json() == "$0.96"
        assert client.get("job/999/").json()["error"] and client.get("job/999/").status_code == 404
        assert client.get("languages/").json()["7"] == "Deutsch"


def test_wordy_language_name_switch() -> None:
    for style, expected in (("pair", [2, "English (UK)"]), ("string", "English (UK)")):
        with running(Wordy(language_name=style)) as emulator, wordy_client(emulator) as client:  # type: ignore[arg-type]
            job = client.post("job/create/", data={"content": "x"}).json()
            assert job["source_language_name"] == expected
            assert client.get(f"job/{job['id']}/").json()["source_language_name"] == expected


def test_wordy_lifecycle_and_status_callbacks(wordy: Wordy, sink: CallbackSink) -> None:
    with wordy_client(wordy) as client:
        job = client.post("job/create/", data={"content": "w " * 100, "callback_url": sink.url + "/hook"}).json()
        assert job["cost"] == "$24.00"
        paid = client.post(f"job/{job['id']}/pay/")
        assert paid.status_code == 200 and paid.content == b""
        assert client.get("account/").json() == {"balance": "$76.00"}
        assert client.post(f"job/{job['id']}/pay/").status_code == 400  # already paid
        wordy.deliver(job["id"], {"Title": "Edited"})
        assert client.get(f"job/{job['id']}/target/").json() == {"Title": "Edited"}
        client.post(f"job/{job['id']}/confirm/").raise_for_status()
        assert client.get(f"job/{job['id']}/").json()["status"] == "c"
        wordy.outbox.flush()
        bodies = [json.loads(r.body) for r in sink.wait_for(3)]
        assert bodies == [
            {"status": [a, b], "job_id": job["id"]} for a, b in (("acp", "aer"), ("aer", "acr"), ("acr", "c"))
        ]
        assert all(r.headers["content-type"] == "application/json" for r in sink.requests)


def test_wordy_conversation_and_reject(wordy: Wordy, sink: CallbackSink) -> None:
    with wordy_client(wordy) as client:
        job_id = wordy.add_job(status="acr", callback_url=sink.url)
        assert (
            client.post(f"job/{job_id}/conversation/", files={"message": (None, "This is my new message.")}).content
            == b""
        )
        wordy.add_message(job_id, "I'm working on your job now.")
        assert client.post(f"job/{job_id}/reject/").status_code == 400  # message required
        client.post(f"job/{job_id}/reject/", data={"message": "I'm unhappy with the edit."}).raise_for_status()
        assert client.get(f"job/{job_id}/").json()["status"] == "aer"  # assumed: acr -> aer
        conversation = client.get(f"job/{job_id}/conversation/").json()
        assert [(m["user"], m["message"]) for m in conversation] == [
            ("John D", "This is my new message."),
            ("Editor X", "I'm working on your job now."),
            ("John D", "I'm unhappy with the edit."),
        ]
        assert all(isinstance(m["created"], int) and m["created"] > 1_600_000_000 for m in conversation)
        wordy.outbox.flush()
        assert [json.loads(r.body) for r in sink.wait_for(4)] == [
            {"username": "John D", "message": "This is my new message.", "job_id": job_id},
            {"username": "Editor X", "message": "I'm working on your job now.", "job_id": job_id},
            {"username": "John D", "message": "I'm unhappy with the edit.", "job_id": job_id},
            {"status": ["acr", "aer"], "job_id": job_id},
        ]
        assert client.post(f"job/{job_id}/confirm/").status_code == 400  # aer cannot be confirmed


def test_wordy_form_callbacks_resend_and_drop(sink: CallbackSink) -> None:
    with running(Wordy(callback_format="form")) as wordy, wordy_client(wordy) as client:
        job_id = wordy.add_job(callback_url=sink.url)
        wordy.outbox.drop_next()
        client.post(f"job/{job_id}/pay/").raise_for_status()
        assert wordy.outbox.flush() == [] and len(wordy.outbox.dropped) == 1
        assert client.get(f"job/{job_id}/").json()["status"] == "aer"  # reconciliation sees what the hook lost
        wordy.deliver(job_id, "done")
        wordy.outbox.flush()
        wordy.outbox.resend()
        first, again = sink.wait_for(2)
        assert first.body == again.body and first.headers["content-type"] == "application/x-www-form-urlencoded"
        assert parse_qs(first.body.decode()) == {"status": ["aer", "acr"], "job_id": [str(job_id)]}


def test_wordy_literal_200_ok_body_and_auto_delivery(sink: CallbackSink) -> None:
    with (
        running(Wordy(none_body=b"200 OK", auto_deliver=True, callback_own_messages=False)) as wordy,
        wordy_client(wordy) as client,
    ):
        job_id = wordy.add_job(callback_url=sink.url)
        assert client.post(f"job/{job_id}/conversation/", data={"message": "hi"}).text == "200 OK"
        assert client.post(f"job/{job_id}/pay/").text == "200 OK"
        assert [json.loads(r.body) for r in sink.wait_for(1)] == [{"status": ["acp", "aer"], "job_id": job_id}]


# ---- Shared Workforce -------------------------------------------------------------------------------------

TASK = {
    "task": {
        "title": "Remove offensive language",
        "instruction": "Edit the text.",
        "text": "My name is Dougie.",
        "answer_type": "edit",
        "callback_url": "",
        "responses_required": 1,
    }
}


@pytest.fixture
def swf() -> Iterator[SharedWorkforce]:
    with running(SharedWorkforce()) as emulator:
        yield emulator


def swf_headers(emulator: SharedWorkforce, kind: str = VENDOR_JSON) -> dict[str, str]:
    return {"X-API-Key": emulator.api_key, "Content-Type": kind, "Accept": kind}


def test_swf_accept_rule_406(swf: SharedWorkforce, http: httpx.Client) -> None:
    for accept in (None, "application/json", "*/*"):
        headers = {"X-API-Key": swf.api_key, **({"Accept": accept} if accept else {})}
        assert http.get(swf.url + "/tasks", headers=headers).status_code == 406
    assert http.get(swf.url + "/tasks", headers={"Accept": VENDOR_JSON}).status_code == 401
    with running(SharedWorkforce(strict_media_types=False)) as lenient:
        headers = {"X-API-Key": lenient.api_key, "Accept": "application/json", "Content-Type": "application/json"}
        assert http.post(lenient.url + "/tasks", headers=headers, json=TASK).status_code == 202


def test_swf_auth_header_or_params(swf: SharedWorkforce, http: httpx.Client) -> None:
    accept = {"Accept": VENDOR_JSON}
    assert http.get(swf.url + "/tasks", headers={**accept, "X-API-Key": "nope"}).status_code == 401
    assert http.get(swf.url + "/tasks", headers=accept, params={"api_key": swf.api_key}).status_code == 200
    body = json.dumps({"api_key": swf.api_key, **TASK})
    assert (
        http.post(swf.url + "/tasks", headers={**accept, "Content-Type": VENDOR_JSON}, content=body).status_code == 202
    )


def test_swf_tasks_crud_and_errors(swf: SharedWorkforce, http: httpx.Client) -> None:
    headers = swf_headers(swf)
    made = http.post(swf.url + "/tasks", headers=headers, json=TASK)
    assert made.status_code == 202 and made.headers["content-type"] == VENDOR_JSON
    task_id = made.json()["task"]["id"]
    assert http.get(f"{swf.url}/tasks/{task_id}", headers=headers).json()["task"]["title"] == TASK["task"]["title"]
    choice = {"task": {**TASK["task"], "answer_type": "choice"}}
    assert http.post(swf.url + "/tasks", headers=headers, json=choice).status_code == 400  # needs answer_options
    assert http.post(swf.url + "/tasks", headers=headers, json={"title": "bare"}).status_code == 400
    assert http.post(swf.url + "/tasks", headers=headers, content=b"{nope").status_code == 400
    plain = {**headers, "Content-Type": "application/json"}
    assert http.post(swf.url + "/tasks", headers=plain, json=TASK).status_code == 400  # strict Content-Type
    updated = http.put(f"{swf.url}/tasks/{task_id}", headers=headers, json={"task": {"title": "New"}})
    assert updated.status_code == 202 and updated.json()["task"]["title"] == "New"
    assert [t["id"] for t in http.get(swf.url + "/tasks/available", headers=headers).json()] == [task_id]
    swf.complete_task(task_id, ["My name is Dougie."])
    assert [t["id"] for t in http.get(swf.url + "/tasks/completed", headers=headers).json()] == [task_id]
    assert http.get(f"{swf.url}/tasks/{task_id}/responses", headers=headers).json() == [
        {"answer": "My name is Dougie.", "id": "34562"}
    ]
    authorized = {"authorized_response": {"answer": ["Contains nudity", "Contains swearing"]}}
    assert (
        http.post(f"{swf.url}/tasks/{task_id}/authorized_responses", headers=headers, json=authorized).status_code
        == 202
    )
    assert swf.authorized[task_id] == [["Contains nudity", "Contains swearing"]]
    assert http.delete(f"{swf.url}/tasks/{task_id}", headers=headers).status_code == 202
    assert http.get(f"{swf.url}/tasks/{task_id}", headers=headers).status_code == 404
    assert http.get(swf.url + "/tasks", headers=headers).json() == []


def test_swf_credits_402(http: httpx.Client) -> None:
    with running(SharedWorkforce(credits=1)) as swf:
        assert http.post(swf.url + "/tasks", headers=swf_headers(swf), json=TASK).status_code == 202
        assert http.post(swf.url + "/tasks", headers=swf_headers(swf), json=TASK).status_code == 402


def test_swf_xml_requests_and_answers(swf: SharedWorkforce, http: httpx.Client) -> None:
    body = (
        "<task><title>Gender</title><instruction>Look.</instruction><answer_type>choice</answer_type>"
        "<answer_options><answer_option>Male</answer_option><answer_option>Female</answer_option>"
        "</answer_options></task>"
    )
    made = http.post(swf.url + "/tasks", headers=swf_headers(swf, VENDOR_XML), content=body)
    assert made.status_code == 202 and made.headers["content-type"] == VENDOR_XML
    root = parse_xml(made.content)
    assert root.tag == "task" and [o.text for o in root.iter("answer_option")] == ["Male", "Female"]
    listed = parse_xml(http.get(swf.url + "/tasks", headers=swf_headers(swf, VENDOR_XML)).content)
    assert listed.tag == "tasks" and listed.find("task/title").text == "Gender"  # type: ignore[union-attr]


def test_swf_json_callback_headers_and_body(swf: SharedWorkforce, sink: CallbackSink, http: httpx.Client) -> None:
    task = {"task": {**TASK["task"], "callback_url": sink.url + "/process", "callback_params": {"ref": 7}}}
    task_id = http.post(swf.url + "/tasks", headers=swf_headers(swf), json=task).json()["task"]["id"]
    swf.complete_task(task_id, ["My name is Dougie."])
    swf.outbox.flush()
    (hook,) = sink.wait_for(1)
    assert hook.path == "/process" and hook.headers["content-type"] == VENDOR_JSON
    assert hook.headers["x-api-key"] == swf.api_key
    assert hook.headers["link"] == f'<{swf.url}/tasks/{task_id}>; rel="response"'
    assert json.loads(hook.body) == {
        "api_key": swf.api_key,
        "task": {
            "title": TASK["task"]["title"],
            "id": task_id,
            "responses": [{"answer": "My name is Dougie.", "id": "34562"}],
            "callback_params": {"ref": 7},
        },
    }


def test_swf_xml_callback_and_key_placement(sink: CallbackSink, http: httpx.Client) -> None:
    with running(SharedWorkforce(callback_format="xml", key_in_body=False, link_base="https://api.example")) as swf:
        task = {"task": {**TASK["task"], "callback_url": sink.url}}
        task_id = http.post(swf.url + "/tasks", headers=swf_headers(swf), json=task).json()["task"]["id"]
        swf.complete_task(task_id, ["a", "b"])
        swf.outbox.flush()
        (hook,) = sink.wait_for(1)
        assert hook.headers["content-type"] == VENDOR_XML and hook.headers["x-api-key"] == swf.api_key
        assert hook.headers["link"] == f'<https://api.example/tasks/{task_id}>; rel="response"'
        root = parse_xml(hook.body)
        assert root.tag == "callback" and root.find("api_key") is None
        assert [r.findtext("answer") for r in root.iter("response")] == ["a", "b"]
    with running(SharedWorkforce(key_in_header=False)) as swf:
        body, headers = swf.callback({"id": 1, "title": "t", "callback_url": sink.url})  # before any response
        assert "X-API-Key" not in headers and json.loads(body)["api_key"] == swf.api_key


def test_swf_sample_callback_is_verbatim_and_invalid_json(swf: SharedWorkforce, sink: CallbackSink) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(SAMPLE_CALLBACK_BODY)
    document = DOCS / "sharedworkforce-rest-api.txt"
    if document.exists():
        assert SAMPLE_CALLBACK_BODY in document.read_text()
    swf.send_sample_callback(sink.url)
    swf.outbox.flush()
    (hook,) = sink.wait_for(1)
    assert hook.body == SAMPLE_CALLBACK_BODY.encode() and hook.headers["link"].endswith('; rel="response"')


# ---- WorkReduce -------------------------------------------------------------------------------------------


def workreduce_client(emulator: WorkReduce) -> httpx.Client:
    return httpx.Client(base_url=emulator.url + "/v2", headers={"Authorization": emulator.api_key}, timeout=5)


def numbers(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [o["order_number"] for o in response.json()]


@pytest.fixture
def workreduce() -> Iterator[WorkReduce]:
    with running(WorkReduce()) as emulator:
        yield emulator


def test_workreduce_auth_and_task_types(workreduce: WorkReduce, http: httpx.Client) -> None:
    assert http.get(workreduce.url + "/v2/orders").status_code == 401
    assert http.get(workreduce.url + "/v2/orders", headers={"Authorization": "Bearer meowmeowmeow"}).status_code == 401
    with workreduce_client(workreduce) as client:
        assert [t["task_type"] for t in client.get("/tasks").json()] == ["qa_screenshot", "recon"]


def test_workreduce_lists_open_orders_newest_first_with_limits(workreduce: WorkReduce) -> None:
    made = [workreduce.add_order(name=f"o{i}") for i in range(12)]
    workreduce.move(made[11], "Approved")
    workreduce.cancel(made[10])
    workreduce.cancel(made[9], by_client=True)
    workreduce.move(made[8], "Delivered")  # still open
    with workreduce_client(workreduce) as client:
        open_newest_first = made[8::-1]
        assert numbers(client.get("/orders")) == open_newest_first[:10]
        assert numbers(client.get("/orders", params={"limit": 3})) == open_newest_first[:3]
        assert len(numbers(client.get("/orders", params={"limit": 100}))) == 9
        for bad in ("0", "101", "x"):
            assert client.get("/orders", params={"limit": bad}).status_code == 400


def test_workreduce_cursors(workreduce: WorkReduce) -> None:
    made = [workreduce.add_order() for _ in range(6)]  # newest first: 5 4 3 2 1 0
    with workreduce_client(workreduce) as client:
        assert numbers(client.get("/orders", params={"limit": 2, "starting_after": made[4]})) == [made[3], made[2]]
        assert numbers(client.get("/orders", params={"limit": 2, "ending_before": made[1]})) == [made[3], made[2]]
        both: dict[str, str | int] = {"limit": 2, "ending_before": made[1], "starting_after": made[4]}
        assert numbers(client.get("/orders", params=both)) == [made[3], made[2]]  # ending_before wins
        workreduce.cancel(made[3])
        assert numbers(client.get("/orders", params={"limit": 2, "starting_after": made[3]})) == [made[2], made[1]]
        assert client.get("/orders", params={"starting_after": "99999999"}).status_code == 400


@pytest.mark.parametrize("finds_closed", [False, True])
def test_workreduce_status_filter_both_readings(finds_closed: bool) -> None:
    with running(WorkReduce(status_filter_finds_closed=finds_closed)) as workreduce:
        approved, active = workreduce.add_order(status="Approved"), workreduce.add_order()
        accepted = workreduce.add_order(status="Accepted")
        canceled = workreduce.add_order(status="Client Canceled")
        with workreduce_client(workreduce) as client:
            assert numbers(client.get("/orders", params={"status": "Activated"})) == [active]
            assert numbers(client.get("/orders", params={"status": "Accepted"})) == [accepted]
            assert numbers(client.get("/orders", params={"status": "Approved"})) == ([approved] if finds_closed else [])
            found = numbers(client.get("/orders", params={"status": "Client Canceled"}))
            assert found == ([canceled] if finds_closed else [])
            assert numbers(client.get("/orders")) == [accepted, active]
            for bad in ("Complete", "Completed", "approved"):  # not in the table of values
                assert client.get("/orders", params={"status": bad}).status_code == 400


@pytest.mark.parametrize("closed_status", [None, 404, 410])
def test_workreduce_get_closed_order_both_readings(closed_status: int | None) -> None:
    with running(WorkReduce(closed_lookup_status=closed_status)) as workreduce:
        open_one, closed = workreduce.add_order(), workreduce.add_order(status="Approved")
        with workreduce_client(workreduce) as client:
            assert client.get(f"/orders/{open_one}").json()["status"] == "Activated"
            answer = client.get(f"/orders/{closed}")
            assert answer.status_code == (closed_status or 200)
            if closed_status is None:
                assert answer.json()["status"] == "Approved" and answer.json()["completed_at"]
            assert client.get("/orders/00000001").status_code == 404


def test_workreduce_create_update_cancel(workreduce: WorkReduce) -> None:
    with workreduce_client(workreduce) as client:
        fields = {
            "name": "n",
            "description": "d",
            "due_date": "2018-05-14T18:30:00Z",
            "task_type": "qa_screenshot",
            "team": "EMEA Mobile Team",
            "requester_email": "emea@ads-agency.com",
        }
        made = client.post("/orders", data=fields, files=[("attachments[]", ("screenshot.jpg", b"x", "image/jpeg"))])
        assert made.status_code == 200 and made.json() == {"order_number": "00007847", "created": "success"}
        order = client.get("/orders/00007847").json()
        assert order["status"] == "Activated" and order["team"] == "EMEA Mobile Team"
        assert order["work_request"]["notes"][0]["text"] == "d" and order["due_date"] == fields["due_date"]
        assert order["work_request"]["attachments"][0]["url"].endswith("/screenshot.jpg")
        assert client.post("/orders", json={"name": "n", "task_type": "qa_screenshot"}).status_code == 200
        assert client.post("/orders", data={"name": "n"}).status_code == 400
        assert client.post("/orders", data={"name": "n", "task_type": "nope"}).status_code == 400
        assert client.post("/orders", data={"name": "n", "task_type": "recon", "due_date": "soon"}).status_code == 400
        updated = client.put("/orders/00007847", data={"order_number": "00007847", "name": "new", "task_type": "recon"})
        assert updated.json() == {"order_number": "00007847", "updated": "success"}
        assert client.get("/orders/00007847").json()["task_type_category"] == "Reconciliation"
        assert client.put("/orders/00007847", data={"order_number": "00007847"}).status_code == 400
        assert client.put("/orders/00007847", data={"order_number": "00000002", "name": "x"}).status_code == 400
        client.put("/orders/00007847", files=[("attachments[]", ("new.gif", b"y", "image/gif"))]).raise_for_status()
        assert len(client.get("/orders/00007847").json()["work_request"]["attachments"]) == 2  # old kept
        assert client.delete("/orders/00007847").json() == {"order_number": "00007847", "deleted": "success"}
        assert client.get("/orders/00007847").json()["status"] == "Client Canceled"
        assert "00007847" not in numbers(client.get("/orders"))
        assert client.delete("/orders/00007847").status_code == 400
        assert client.put("/orders/00007847", data={"name": "x"}).status_code == 400
        assert client.delete("/orders/00000001").status_code == 404


def test_workreduce_lifecycle_helpers(workreduce: WorkReduce) -> None:
    number = workreduce.add_order(status="Draft")
    workreduce.move(number, "QA Complete")
    workreduce.move(number, "Approved")
    assert workreduce.history[number] == [
        "Draft",
        "Activated",
        "Accepted",
        "In Progress",
        "Submitted",
        "In QA",
        "QA Complete",
        "Completed",
        "Delivered",
        "Approved",
    ]
    with pytest.raises(ValueError):
        workreduce.move(number, "Draft")
    other = workreduce.add_order()
    workreduce.cancel(other)
    assert workreduce.orders[other]["status"] == "Canceled"


# ---- Worksection ------------------------------------------------------------------------------------------


@pytest.fixture
def worksection() -> Iterator[Worksection]:
    with running(Worksection()) as emulator:
        yield emulator


def ws_call(
    emulator: Worksection, action: str, page: str | None = None, method: str = "GET", **params: str
) -> dict[str, Any]:
    values = {
        "action": action,
        **({"page": page} if page else {}),
        "hash": sign(action, emulator.api_key, page),
        **params,
    }
    url = emulator.url + "/api/admin/v2/"
    with httpx.Client(timeout=5) as client:
        answer = client.get(url, params=values) if method == "GET" else client.post(url, data=values)
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def test_worksection_hash_is_md5_of_page_action_key() -> None:
    assert sign("get_all_tasks", "KEY") == hashlib.md5(b"get_all_tasksKEY").hexdigest()  # noqa: S324
    assert sign("get_comments", "KEY", "/project/1/2/") == hashlib.md5(b"/project/1/2/get_commentsKEY").hexdigest()  # noqa: S324


def test_worksection_request_errors(worksection: Worksection, http: httpx.Client) -> None:
    url = worksection.url + "/api/admin/v2/"

    def code(**params: str) -> int:
        return http.get(url, params=params).json()["status_code"]  # type: ignore[no-any-return]

    assert code() == 1
    assert code(action="drop_everything", hash=sign("drop_everything", worksection.api_key)) == 0
    assert code(action="get_all_tasks") == 2
    assert code(action="get_all_tasks", hash="0" * 32) == 2
    # a page given to a method that does not need it is part of the hash
    assert code(action="get_all_tasks", page="/project/1/", hash=sign("get_all_tasks", worksection.api_key)) == 2
    assert ws_call(worksection, "get_all_tasks", "/project/1/")["status"] == "ok"
    failed = http.get(url, params={"action": "get_all_tasks"}).json()
    assert failed == {"status": "error", "status_code": 2, "message": "Action hash is missed or invalid"}


def test_worksection_tasks_projects_and_pages(worksection: Worksection) -> None:
    project = worksection.add_project("Site")
    task = worksection.add_task(project, "Design")
    sub = worksection.add_task(project, "Logo", parent=task)
    subsub = worksection.add_task(project, "Colours", parent=sub)
    assert worksection.page(subsub) == f"/project/{project}/{task}/{subsub}/"
    tasks = ws_call(worksection, "get_all_tasks")
    assert tasks["status"] == "ok" and tasks["data"][0]["page"] == f"/project/{project}/{task}/"
    assert tasks["data"][0]["child"][0]["child"][0]["id"] == subsub
    assert ws_call(worksection, "get_projects")["data"][0]["page"] == f"/project/{project}/"
    expected = {
        None: 7,
        "project/1/": 3,
        "/project/x/": 3,
        "/project/9/": 4,
        f"/project/{project}/": 8,
        f"/project/{project}/9/": 5,
        f"/project/{project}/{sub}/": 5,
        f"/project/{project}/{task}/9/": 6,
    }
    for page, status_code in expected.items():
        assert ws_call(worksection, "get_comments", page)["status_code"] == status_code, page
    assert ws_call(worksection, "get_comments", f"/project/{project}/{task}/{subsub}/")["data"] == []


def test_worksection_comments(worksection: Worksection) -> None:
    project = worksection.add_project("Site")
    page = f"/project/{project}/{worksection.add_task(project, 'Design')}/"
    posted = ws_call(worksection, "post_comment", page, method="POST", text="Looks good")
    assert posted["status"] == "ok" and posted["data"]["text"] == "Looks good"
    assert ws_call(worksection, "get_comments", page)["data"] == [posted["data"]]
    missing = ws_call(worksection, "post_comment", page)
    assert (missing["status_code"], missing["message"], missing["message_details"]) == (10, "Field is required", "text")
    bad = ws_call(worksection, "post_comment", page, text="x", email_user_from="not-an-email")
    assert (bad["status_code"], bad["message_details"]) == (11, "not-an-email")


def test_worksection_close_and_reopen(worksection: Worksection) -> None:
    project = worksection.add_project("Site")
    task = worksection.add_task(project, "Design")
    sub = worksection.add_task(project, "Logo", parent=task)
    subsub = worksection.add_task(project, "Colours", parent=sub)
    task_page, sub_page = f"/project/{project}/{task}/", f"/project/{project}/{task}/{sub}/"
    assert ws_call(worksection, "close_task", task_page)["status_code"] == 13
    assert ws_call(worksection, "close_task", sub_page)["status_code"] == 15
    assert ws_call(worksection, "close_task", f"{task_page}{subsub}/") == {"status": "ok"}
    assert ws_call(worksection, "complete_task", sub_page) == {"status": "ok"}
    assert ws_call(worksection, "close_task", sub_page)["status_code"] == 14
    assert ws_call(worksection, "close_task", task_page) == {"status": "ok"}
    assert ws_call(worksection, "close_task", task_page)["status_code"] == 12
    assert ws_call(worksection, "reopen_task", task_page) == {"status": "ok"}
    assert ws_call(worksection, "get_all_tasks")["data"][0]["status"] == "active"


def test_worksection_quota(http: httpx.Client) -> None:
    with running(Worksection(quota=2)) as worksection:
        assert ws_call(worksection, "get_all_tasks")["status"] == "ok"
        assert ws_call(worksection, "get_all_tasks")["status"] == "ok"
        assert ws_call(worksection, "get_all_tasks") == {
            "status": "error",
            "status_code": 20,
            "message": "Quota exceeded",
        }
        worksection.reset_quota()
        assert ws_call(worksection, "get_all_tasks")["status"] == "ok"


# ---- WorkTaps ---------------------------------------------------------------------------------------------


def worktaps_client(emulator: WorkTaps, bearer: bool = True) -> httpx.Client:
    auth = f"Bearer {emulator.api_key}" if bearer else "Basic " + b64encode(f"{emulator.api_key}:".encode()).decode()
    return httpx.Client(base_url=emulator.url + "/api/v1", headers={"Authorization": auth}, timeout=5)


@pytest.fixture
def worktaps() -> Iterator[WorkTaps]:
    with running(WorkTaps(today=date(2026, 12, 1))) as emulator:
        yield emulator


def new_account(emulator: WorkTaps, **changes: Any) -> dict[str, Any]:
    department = emulator.add_department("Kitchen")
    location = emulator.add_location("Downtown")
    account = {
        "firstName": "John",
        "lastName": "Doe",
        "email": "john@example.com",
        "phone": "+12022345678",
        "timezone": "America/New_York",
        "role": "EMPLOYEE",
        "department": department,
        "locations": [location],
        "meta": {"jobTitle": "Dish Washer", "startDate": "2020-01-02"},
        "state": "CA",
        "postal": "90210",
    }
    return {k: v for k, v in {**account, **changes}.items() if v is not None}


def test_worktaps_auth(worktaps: WorkTaps, http: httpx.Client) -> None:
    refused = http.get(worktaps.url + "/api/v1/accounts")
    assert (refused.status_code, refused.json()) == (400, {"code": 40000, "message": "Unauthorized request"})
    assert http.get(worktaps.url + "/api/v1/accounts", headers={"Authorization": "Bearer nope"}).status_code == 400
    with worktaps_client(worktaps, bearer=True) as client:
        assert client.get("/accounts").status_code == 200
    with worktaps_client(worktaps, bearer=False) as client:
        assert client.get("/accounts").status_code == 200
    assert http.get(worktaps.url + "/api/v1/accounts", auth=(worktaps.api_key, "")).status_code == 200
    with running(WorkTaps(status_style="conventional")) as conventional:
        assert http.get(conventional.url + "/api/v1/accounts").status_code == 401
        with worktaps_client(conventional) as client:
            assert client.get("/account/5").status_code == 404


def test_worktaps_create_get_update_account(worktaps: WorkTaps) -> None:
    with worktaps_client(worktaps) as client:
        made = client.post("/account", json=new_account(worktaps))
        assert made.status_code == 200, made.text
        account = made.json()
        assert account["jobTitle"] == "Dish Washer" and account["startDate"] == "2020-01-02"
        assert account["department"]["name"] == "Kitchen" and account["locations"][0]["slug"] == "downtown"
        assert client.get(f"/account/{account['id']}").json() == account
        assert client.get("/account/999").json() == {"code": 40003, "message": "Account id 999 not found"}
        changed = client.put(f"/account/{account['id']}", data={"firstName": "Jane", "meta[shoe]": "9"}).json()
        assert changed["firstName"] == "Jane" and changed["meta"] == {**account["meta"], "shoe": "9"}
        assert client.put(f"/account/{account['id']}", json={"locations": []}).json()["code"] == 40019
        worktaps.set_open_jobs(account["id"], ["Brunch shift"])
        client.put(f"/account/{account['id']}", json={"role": "MANAGER"}).raise_for_status()
        demoted = client.put(f"/account/{account['id']}", json={"role": "EMPLOYEE"}).json()
        assert demoted == {
            "code": 40031,
            "message": "Forbiden role - account is a manager on currently opened jobs: Brunch shift",
        }


def test_worktaps_the_documents_curl_is_refused(worktaps: WorkTaps) -> None:
    with worktaps_client(worktaps) as client:
        first = client.post("/account", data={"firstName": "John", "lastName": "Doe"})
        assert (first.status_code, first.json()) == (400, {"code": 40006, "message": "Email is required"})
        with running(WorkTaps(errors_as_array=True)) as array, worktaps_client(array) as array_client:
            every = array_client.post("/account", data={"firstName": "John", "lastName": "Doe"}).json()
            assert [e["code"] for e in every["errors"]] == [40006, 40007, 40008, 40009, 40010, 40011, 40013]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"firstName": None}, 40004),
        ({"lastName": ""}, 40005),
        ({"meta": {"startDate": "2020-01-02"}}, 40014),
        ({"meta": {"jobTitle": "Cook"}}, 40015),
        ({"email": "nope"}, 40017),
        ({"phone": "202-234-5678"}, 40018),
        ({"locations": "1"}, 40019),
        ({"role": "BOSS"}, 40020),
        ({"meta": {"jobTitle": "C", "startDate": "2/1/20"}}, 40021),
        ({"meta": {"jobTitle": "C", "startDate": "2027-01-01"}}, 40022),
        ({"timezone": "Mars/Olympus"}, 40023),
        ({"state": "California"}, 40025),
        ({"postal": "9021"}, 40026),
        ({"locations": ["404"]}, 40001),
        ({"department": "404"}, 40002),
    ],
)
def test_worktaps_account_validation_codes(worktaps: WorkTaps, changes: dict[str, Any], code: int) -> None:
    with worktaps_client(worktaps) as client:
        answer = client.post("/account", json=new_account(worktaps, **changes))
    assert (answer.status_code, answer.json()["code"]) == (400, code)


def test_worktaps_duplicates_and_form_input(worktaps: WorkTaps) -> None:
    with worktaps_client(worktaps) as client:
        client.post("/account", json=new_account(worktaps)).raise_for_status()
        assert client.post("/account", json=new_account(worktaps, phone=None)).json()["code"] == 40029
        assert client.post("/account", json=new_account(worktaps, email=None)).json()["code"] == 40030
        form = new_account(worktaps, email="jane@example.com", phone=None, meta=None, locations=None)
        form.update(
            {"meta[jobTitle]": "Cook", "meta[startDate]": "2021-03-04", "locations[]": [worktaps.add_location("X")]}
        )
        made = client.post("/account", data=form)
        assert made.status_code == 200, made.text
        assert made.json()["jobTitle"] == "Cook" and made.json()["locations"][0]["name"] == "X"


def test_worktaps_delete_account(worktaps: WorkTaps) -> None:
    with worktaps_client(worktaps) as client:
        ident = client.post("/account", json=new_account(worktaps)).json()["id"]
        assert client.request("DELETE", f"/account/{ident}").json()["code"] == 40012
        assert client.request("DELETE", f"/account/{ident}", data={"termDate": "2010-01-20"}).json()["code"] == 40027
        assert client.request("DELETE", f"/account/{ident}", data={"termDate": "01/20/2030"}).json()["code"] == 40028
        assert client.request("DELETE", f"/account/{ident}", data={"termDate": "01/20/2010"}).json() == {
            "removed": True
        }
        assert client.get(f"/account/{ident}").json()["code"] == 40003
        assert client.get("/accounts").json() == {"total": 0, "records": []}


@pytest.mark.parametrize("page_base", [1, 0])
def test_worktaps_paging(page_base: int) -> None:
    with (
        running(WorkTaps(page_base=page_base, today=date(2026, 12, 1))) as worktaps,
        worktaps_client(worktaps) as client,
    ):
        ids = [
            client.post("/account", json=new_account(worktaps, email=f"p{i}@x.io", phone=f"+1202555000{i}")).json()[
                "id"
            ]
            for i in range(5)
        ]
        first = client.get("/accounts", params={"limit": 2}).json()
        assert first["total"] == 5 and [a["id"] for a in first["records"]] == ids[:2]
        assert client.get("/accounts", params={"limit": 2, "page": page_base}).json() == first
        third = client.get("/accounts", params={"limit": 2, "page": page_base + 2}).json()
        assert [a["id"] for a in third["records"]] == ids[4:]
        assert client.get("/accounts", params={"limit": 2, "page": page_base + 3}).json()["records"] == []
        for bad in ({"page": page_base - 1}, {"limit": 0}, {"limit": 1001}, {"page": "one"}):
            refused = client.get("/accounts", params=bad)
            assert refused.status_code == 400 and "code" not in refused.json()
        assert client.get("/accounts", params={"limit": 1000}).json()["total"] == 5


def test_worktaps_account_filters(worktaps: WorkTaps) -> None:
    with worktaps_client(worktaps) as client:
        john = client.post("/account", json=new_account(worktaps)).json()
        other = new_account(
            worktaps,
            email="cook@example.com",
            phone="+13105550000",
            meta={"jobTitle": "Cook", "startDate": "2020-01-02", "badge": "7"},
        )
        cook = client.post("/account", json=other).json()

        def found(**params: str) -> list[int]:
            return [a["id"] for a in client.get("/accounts", params=params).json()["records"]]

        for phone in ("(202)234-5678", "2022345678", "12022345678", "+12022345678"):
            assert found(phone=phone) == [john["id"]]
        assert found(email="cook@example.com") == [cook["id"]]
        assert found(meta='{"jobTitle": "Dish Washer"}') == [john["id"]]
        assert found(meta='{"badge": "7", "jobTitle": "Cook"}') == [cook["id"]]
        assert found(location=cook["locations"][0]["id"]) == [cook["id"]]
        assert client.get("/accounts", params={"meta": "{not json"}).status_code == 400


def test_worktaps_departments_and_locations(worktaps: WorkTaps) -> None:
    with worktaps_client(worktaps) as client:
        worktaps.add_department("Front of House")
        assert client.get("/departments").json()["records"][0]["slug"] == "front-of-house"
        made = client.post("/locations", json={"name": "Main St", "city": "San Francisco", "state": "CA"})
        assert made.status_code == 200 and made.json()["slug"] == "main-st"
        assert client.post("/locations", data={"name": "Main St"}).json()["slug"] == "main-st-2"
        assert client.post("/locations", json={"city": "x"}).status_code == 400
        assert client.post("/locations", json={"name": "Y", "state": "Calif"}).json()["code"] == 40025
        updated = client.put(f"/locations/{made.json()['id']}", data={"about": "Corner shop"})
        assert updated.json()["about"] == "Corner shop"
        assert client.put("/locations/404", data={"about": "x"}).json() == {
            "code": 40001,
            "message": "Location id 404 not found",
        }
        assert client.get("/locations", params={"limit": 1}).json()["total"] == 2
