from __future__ import annotations

import json

import pytest

from tests.conftest import fixture_bytes
from workhooks.core.events import Event
from workhooks.core.exceptions import ParseError, UnsupportedMediaTypeError
from workhooks.platforms.sharedworkforce import callback as swf

VENDOR_JSON = "application/vnd.com.sharedworkforce.text+json"
VENDOR_XML = "application/vnd.com.sharedworkforce.text+xml"
KEY = "acdc30b2-14c5-46ee-ba35-11d50edc65ec"


def test_wrapped_json_callback() -> None:
    document = swf.decode(fixture_bytes("sharedworkforce", "callback.json"), VENDOR_JSON)
    assert swf.api_key(document) == KEY
    callback = swf.to_callback(document)
    assert callback.type == "sharedworkforce.task.responses_received"
    assert callback.subject == "task/501234"
    assert callback.phase == "completed"
    assert callback.data == {
        "task_id": 501234,
        "title": "Remove offensive language",
        "responses": [{"answer": "My name is Dougie.", "id": "34562"}],
        "callback_params": {"article_id": 77},
    }
    assert KEY not in json.dumps(callback.data)


def test_ruby_client_shapes_bare_task_name_tags_and_nested_params() -> None:
    document = swf.decode(fixture_bytes("sharedworkforce", "ruby_client_bare.json"), "application/json")
    callback = swf.to_callback(document)
    assert callback.data["task_id"] == 601
    assert callback.data["title"] == "Tag photo"
    assert callback.data["responses"][0] == {
        "answer": ["Contains nudity", "Contains swearing"],
        "username": "worker-17",
    }
    assert callback.data["callback_params"] == {"resource": {"id": 9, "kind": "photo"}, "tags": ["a", "b"]}


def test_docs_sample_body_is_not_json_and_is_refused() -> None:
    """The documents' sample has `"responses": ["answer": ...]`: no serializer sends that."""
    with pytest.raises(ParseError, match="not valid JSON"):
        swf.decode(fixture_bytes("sharedworkforce", "docs_callback.txt"), VENDOR_JSON)


def test_rails_style_xml_callback() -> None:
    document = swf.decode(fixture_bytes("sharedworkforce", "callback.xml"), VENDOR_XML)
    assert swf.api_key(document) == KEY
    callback = swf.to_callback(document)
    assert callback.data["task_id"] == 501234
    assert callback.data["responses"] == [
        {"answer": "My name is Dougie.", "id": "34562", "username": "worker-1"},
        {"answer": ["one", "two"], "new_image_url": "https://example.com/crop/1.png"},
    ]
    assert callback.data["callback_params"] == {"article_id": 77, "draft": False, "note": None}


def test_xml_and_json_of_the_same_responses_are_the_same_event() -> None:
    as_json = b'{"task": {"id": 9, "responses": [{"answer": "yes", "id": "1"}]}}'
    as_xml = (
        b'<task><id type="integer">9</id><responses type="array">'
        b"<response><answer>yes</answer><id>1</id></response></responses></task>"
    )
    assert (
        Event.from_callback("s", swf.parse(as_json, "application/json")).id
        == Event.from_callback("s", swf.parse(as_xml, "application/xml")).id
    )


def test_response_order_does_not_change_the_event_id() -> None:
    one = b'{"task": {"id": 9, "responses": [{"answer": "a", "id": "1"}, {"answer": "b", "id": "2"}]}}'
    two = b'{"task": {"id": "9", "responses": [{"answer": "b", "id": "2"}, {"answer": "a", "id": "1"}]}}'
    assert Event.from_callback("s", swf.parse(one, None)).id == Event.from_callback("s", swf.parse(two, None)).id


@pytest.mark.parametrize("name", ["xxe.xml", "billion_laughs.xml", "quadratic_blowup.xml"])
def test_dtds_and_entities_are_refused(name: str) -> None:
    with pytest.raises(ParseError, match="XML refused"):
        swf.decode(fixture_bytes("sharedworkforce", name), "application/xml")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"task": {"responses": [{"answer": "a"}]}}', "task.id"),
        (b'{"task": {"id": 1}}', "responses"),
        (b'{"task": {"id": 1, "responses": []}}', "responses"),
        (b'{"task": {"id": 1, "responses": ["a"]}}', "responses.0"),
        (b'{"hello": 1}', "no task"),
        (b'{"task": {"id": true, "responses": [{}]}}', "task.id"),
    ],
)
def test_unusable_tasks_say_why(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        swf.parse(body, "application/json")


def test_deep_nesting_is_refused_not_a_crash() -> None:
    deep_json = b'{"task": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(ParseError):
        swf.parse(deep_json, "application/json")
    deep_xml = b"<task>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</task>"
    with pytest.raises(ParseError, match="deeper"):
        swf.parse(deep_xml, "application/xml")


def test_unsupported_media_type() -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        swf.decode(b"a=b", "application/x-www-form-urlencoded")


def test_repeated_xml_tags_become_one_list_in_order() -> None:
    body = b"<task><tag>a</tag><tag>b</tag><tag>c</tag><list type='array'><x>1</x></list><list>2</list></task>"
    assert swf.decode(body, "application/xml")["task"] == {"tag": ["a", "b", "c"], "list": ["1", "2"]}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<task>" + b"<a/>" * swf.MAX_XML_ELEMENTS + b"</task>", "elements"),
        (b"<task>" + b"<a>" * swf.MAX_XML_DEPTH + b"</a>" * swf.MAX_XML_DEPTH + b"</task>", "deeper"),
        ('<task><id type="integer">²</id></task>'.encode(), "typed integer"),
        (b'<task><id type="integer">' + b"1" * 5000 + b"</id></task>", "typed integer"),
    ],
)
def test_xml_past_its_bounds_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        swf.decode(body, "application/xml")


def test_a_negative_xml_integer_is_still_an_integer() -> None:
    assert swf.decode(b'<task><n type="integer"> -3 </n></task>', "application/xml") == {"task": {"n": -3}}


@pytest.mark.parametrize(
    "task_id", [10**20, "9" * 65, "\u2028", "   "], ids=["21 digits", "65 characters", "unprintable", "blank"]
)
def test_task_ids_past_their_bounds_are_refused(task_id: object) -> None:
    with pytest.raises(ParseError, match=r"task\.id"):
        swf.to_callback({"task": {"id": task_id, "responses": [{"answer": "a"}]}})


def test_both_body_keys_are_read_and_must_agree() -> None:
    assert swf.api_key({"api_key": KEY, "task": {"api_key": KEY}}) == KEY
    assert swf.api_key({"task": {"api_key": KEY}}) == KEY
    with pytest.raises(swf.ConflictingKeysError, match="differ") as refused:
        swf.api_key({"api_key": KEY, "task": {"api_key": "another"}})
    assert refused.value.status_code == 401
