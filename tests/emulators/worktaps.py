"""WorkTaps API v1 emulator, from worktaps-api-v1.txt alone.

Routes (document): POST /api/v1/account, GET/PUT/DELETE /api/v1/account/:id, GET /api/v1/accounts,
GET /api/v1/departments, GET/POST /api/v1/locations, PUT /api/v1/locations/:id.
Auth: `Authorization: Bearer <token>` or HTTP Basic with the token as username (the curl's `-u key:`);
anything else is error 40000. Success is 200. Errors carry the document's codes and messages.

Assumptions where the document is silent (or says two things):
- HTTP status of an error: `status_style="prefix"` (default) reads it off the code, 40003 -> 400,
  50001 -> 500 (the document: "an unsuccessful response will result in a 4xx"); "conventional" answers
  401 for 40000, 404 for 40001-40003 (not found), 400 for other 400xx, 500 for 500xx.
- Error body: the sample shows one {"code", "message"} object, the text says "an errors object ... which
  contains an array of one or more ... problems". `errors_as_array=False` (default) sends the sample's shape
  for the first problem; True sends {"errors": [{"code", "message"}, ...]} with every problem found.
  Problems without a documented code (bad limit/page, meta over 100 characters, a location without a name)
  have no "code" ("a optional error code"), status 400.
- Paging: `page` is a "page number" whose records are "calculated based on the limit"; the document gives no
  base. A page number counts from 1 (the first page is page 1), so offset = (page - 1) * limit by default;
  `page_base=0` gives the other reading. A page below the base is an error. limit defaults to 100.
  Records are in id order; `total` counts every match, not the page.
- Bodies: JSON, or a form (the curl uses -d). In a form, meta / department / locations may be JSON text,
  or meta[key]=..., locations[]=... . department is a department id (or an object with "id"); locations
  are location ids (or objects with "id"). Account ids are numbers, department and location ids strings
  (the list filter `location` is typed number: compared as text).
- Check order: required fields (table order; neither email nor phone gives 40006 then 40007), formats,
  references (40001, 40002), duplicates (40029, 40030), then 40031. Email/phone "required" means one of
  the two. Phone must be E.164; state two capital letters; postal 5 digits (optionally -4 digits);
  timezone an IANA name; startDate YYYY-MM-DD, not in the future; termDate MM/DD/YYYY (the sample's
  01/20/2010), not in the future. 40031: changing the role to EMPLOYEE of an account that manages open
  jobs (set with set_open_jobs).
- DELETE removes the account: later GETs give 40003 and lists omit it. termDate may be in the body or query.
- The Account object lists `street`, the account input does not: accepted anyway. startDate and jobTitle
  are copied from meta to the top level.
"""

from __future__ import annotations

import contextlib
import json
import re
from base64 import b64decode
from binascii import Error as Base64Error
from datetime import UTC, date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tests.emulators.base import Emulator, Request, Response

MESSAGES = {
    40000: "Unauthorized request",
    40001: "Location id [id] not found",
    40002: "Department id [id] not found",
    40003: "Account id [id] not found",
    40004: "First Name is required",
    40005: "Last Name is required",
    40006: "Email is required",
    40007: "Phone is required",
    40008: "Locations is required",
    40009: "Department is required",
    40010: "Role is required",
    40011: "Timezone is required",
    40012: "Term date is required",
    40013: "Meta fields are required",
    40014: "Meta field Job Title is required",
    40015: "Meta field Start Date is required",
    40017: "Email is invalid",
    40018: "Phone is invalid",
    40019: "Locations must be an array with at least one location",
    40020: "Role must EMPLOYEE, MANAGER, OWNER",
    40021: "Start Date is invalid",
    40022: "Start Date cannot be in the future",
    40023: "Timezone is invalid",
    40025: "State is invalid",
    40026: "Postal is invalid",
    40027: "Term Date is invalid",
    40028: "Term Date cannot be in the future",
    40029: "Email already exists",
    40030: "Phone already exists",
    40031: "Forbiden role - account is a manager on currently opened jobs: [Jobs]",
    50001: "Error while creating account",
    50002: "Error while deleting account",
    50003: "Error while updating account",
    50004: "Error while updating location",
    50005: "Error while updating location",
}
ROLES = ("EMPLOYEE", "MANAGER", "OWNER")
TEXT_FIELDS = (
    "firstName",
    "lastName",
    "email",
    "phone",
    "city",
    "state",
    "street",
    "postal",
    "birthDate",
    "employeeId",
    "timezone",
    "role",
)
LOCATION_FIELDS = ("name", "website", "phone", "street", "city", "postal", "state", "about", "areacode", "timezone")
E164 = re.compile(r"\+[1-9]\d{1,14}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
Problem = tuple[int | None, str]


def problem(code: int, **values: str) -> Problem:
    text = MESSAGES[code]
    for name, value in values.items():
        text = text.replace(f"[{name}]", value)
    return code, text


def digits(phone: str) -> str:
    """The document's phone sanitising: (202)234-5678, 2022345678, 12022345678, +12022345678 are one number."""
    only = re.sub(r"\D", "", phone)
    return only[1:] if len(only) == 11 and only.startswith("1") else only


def slugify(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "item"
    slug, n = base, 1
    while slug in taken and n < 10_000:
        n += 1
        slug = f"{base}-{n}"
    return slug


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class WorkTaps(Emulator):
    def __init__(
        self,
        api_key: str = "worktaps-test-key",
        page_base: int = 1,
        default_limit: int = 100,
        status_style: Literal["prefix", "conventional"] = "prefix",
        errors_as_array: bool = False,
        today: date | None = None,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.page_base = page_base
        self.default_limit = default_limit
        self.status_style = status_style
        self.errors_as_array = errors_as_array
        self.today = today or datetime.now(UTC).date()
        self.accounts: dict[int, dict[str, Any]] = {}
        self.departments: dict[str, dict[str, Any]] = {}
        self.locations: dict[str, dict[str, Any]] = {}
        self.open_jobs: dict[int, list[str]] = {}
        self.next_id = 1

    # ---- helpers for tests ------------------------------------------------------------------------------

    def add_department(self, name: str) -> str:
        with self.lock:
            ident = self._new_id()
            slugs = {d["slug"] for d in self.departments.values()}
            self.departments[ident] = {"id": ident, "name": name, "slug": slugify(name, slugs)}
            return ident

    def add_location(self, name: str, **fields: str) -> str:
        with self.lock:
            ident = self._new_id()
            slugs = {loc["slug"] for loc in self.locations.values()}
            self.locations[ident] = {"id": ident, "name": name, "slug": slugify(name, slugs), **fields}
            return ident

    def add_account(self, first: str, last: str, email: str, **fields: Any) -> int:
        """A valid account, as POST /api/v1/account makes it (a department and a location made when none exist)."""
        department = next(iter(self.departments), None) or self.add_department("Editorial")
        location = next(iter(self.locations), None) or self.add_location("HQ")
        given = {"firstName": first, "lastName": last, "email": email, "timezone": "America/New_York",
                 "role": "EMPLOYEE", "meta": {"jobTitle": "Editor", "startDate": "2020-01-06"},
                 "department": department, "locations": [location], **fields}  # fmt: skip
        with self.lock:
            answer = self._save(None, given)
        assert answer.status == 200, answer.body
        return int(answer.body["id"])

    def update_account(self, account_id: int, **fields: Any) -> None:
        """What PUT /api/v1/account/:id does."""
        with self.lock:
            answer = self._save(self.accounts[account_id], fields)
        assert answer.status == 200, answer.body

    def remove_account(self, account_id: int) -> None:
        """What DELETE /api/v1/account/:id does."""
        with self.lock:
            del self.accounts[account_id]

    def set_open_jobs(self, account_id: int, jobs: list[str]) -> None:
        with self.lock:
            self.open_jobs[account_id] = jobs

    def _new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    # ---- answers ----------------------------------------------------------------------------------------

    def fail(self, problems: list[Problem]) -> Response:
        code = problems[0][0]
        if code is None:
            status = 400
        elif self.status_style == "prefix":
            status = code // 100
        else:
            status = {40000: 401, 40001: 404, 40002: 404, 40003: 404}.get(code, 500 if code >= 50000 else 400)
        shown = [{"code": c, "message": m} if c is not None else {"message": m} for c, m in problems]
        return Response(status, {"errors": shown} if self.errors_as_array else shown[0])

    def handle(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.fail([problem(40000)])
        parts = request.path.strip("/").split("/")
        if parts[:2] != ["api", "v1"]:
            return Response(404, {"message": "not found"})
        route, method = parts[2:], request.method
        with self.lock:
            if route == ["account"] and method == "POST":
                return self._save(None, self._input(request))
            if len(route) == 2 and route[0] == "account":
                account = self.accounts.get(int(route[1])) if route[1].isdigit() else None
                if account is None:
                    return self.fail([problem(40003, id=route[1])])
                if method == "GET":
                    return Response(200, account)
                if method == "PUT":
                    return self._save(account, self._input(request))
                if method == "DELETE":
                    return self._delete(account, request)
            if route == ["accounts"] and method == "GET":
                return self._list_accounts(request)
            if route == ["departments"] and method == "GET":
                return self._page(request, list(self.departments.values()))
            if route == ["locations"] and method == "GET":
                return self._page(request, list(self.locations.values()))
            if route == ["locations"] and method == "POST":
                return self._save_location(None, self._input(request))
            if len(route) == 2 and route[0] == "locations" and method == "PUT":
                location = self.locations.get(route[1])
                if location is None:
                    return self.fail([problem(40001, id=route[1])])
                return self._save_location(location, self._input(request))
        return Response(404, {"message": "not found"})

    def _authorized(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return value == self.api_key
        if scheme.lower() != "basic":
            return False
        try:
            user = b64decode(value, validate=True).decode("utf-8").partition(":")[0]
        except (Base64Error, UnicodeDecodeError):
            return False
        return user == self.api_key

    def _input(self, request: Request) -> dict[str, Any]:
        if isinstance(request.json, dict):
            return request.json
        given: dict[str, Any] = {}
        for key, values in request.form.items():
            if key.startswith("meta[") and key.endswith("]"):
                given.setdefault("meta", {})[key[5:-1]] = values[0]
            elif key in ("locations", "locations[]"):
                given["locations"] = values
            else:
                given[key] = values[0]
        for key in ("meta", "department", "locations"):
            value = given.get(key)
            single = value[0] if isinstance(value, list) and len(value) == 1 else value
            if isinstance(single, str) and single[:1] in ("{", "["):
                with contextlib.suppress(ValueError):
                    given[key] = json.loads(single)
        return given

    # ---- accounts ---------------------------------------------------------------------------------------

    def _check_account(self, current: dict[str, Any] | None, given: dict[str, Any]) -> list[Problem]:
        found: list[Problem] = []
        meta = given.get("meta")
        if current is None:
            for code, name in ((40004, "firstName"), (40005, "lastName")):
                if not given.get(name):
                    found.append(problem(code))
            if not given.get("email") and not given.get("phone"):
                found += [problem(40006), problem(40007)]
            for code, name in (
                (40008, "locations"),
                (40009, "department"),
                (40010, "role"),
                (40011, "timezone"),
                (40013, "meta"),
            ):
                if given.get(name) in (None, "", [], {}):
                    found.append(problem(code))
            if isinstance(meta, dict):
                found += [
                    problem(code) for code, name in ((40014, "jobTitle"), (40015, "startDate")) if not meta.get(name)
                ]
        found += self._formats(given, current)
        return found

    def _formats(self, given: dict[str, Any], current: dict[str, Any] | None) -> list[Problem]:
        found: list[Problem] = []
        checks = (
            (40017, "email", lambda v: EMAIL.fullmatch(v)),
            (40018, "phone", lambda v: E164.fullmatch(v)),
            (40020, "role", lambda v: v in ROLES),
            (40023, "timezone", valid_timezone),
            (40025, "state", lambda v: re.fullmatch(r"[A-Z]{2}", v)),
            (40026, "postal", lambda v: re.fullmatch(r"\d{5}(-\d{4})?", v)),
        )
        for code, name, test in checks:
            if given.get(name) and not test(str(given[name])):
                found.append(problem(code))
        locations = given.get("locations")
        malformed = not isinstance(locations, list) or not locations
        if "locations" in given and malformed and (current is not None or locations not in (None, "", [])):
            found.append(problem(40019))
        meta = given.get("meta")
        if isinstance(meta, dict):
            if meta.get("startDate"):
                try:
                    start = date.fromisoformat(str(meta["startDate"]))
                    if start > self.today:
                        found.append(problem(40022))
                except ValueError:
                    found.append(problem(40021))
            if any(len(str(v)) > 100 for v in meta.values()):
                found.append((None, "Meta values are limited to 100 characters"))
        elif meta not in (None, ""):
            found.append((None, "meta must be an object"))
        if found:
            return found
        for ident in self._ids(locations) if isinstance(locations, list) else []:
            if ident not in self.locations:
                found.append(problem(40001, id=ident))
        department = self._ids([given["department"]])[0] if given.get("department") else None
        if department is not None and department not in self.departments:
            found.append(problem(40002, id=department))
        others = [a for a in self.accounts.values() if current is None or a["id"] != current["id"]]
        if given.get("email") and any(a.get("email") == given["email"] for a in others):
            found.append(problem(40029))
        if given.get("phone") and any(a.get("phone") and digits(a["phone"]) == digits(given["phone"]) for a in others):
            found.append(problem(40030))
        jobs = self.open_jobs.get(current["id"], []) if current is not None else []
        if jobs and given.get("role") == "EMPLOYEE":
            found.append(problem(40031, Jobs=", ".join(jobs)))
        return found

    @staticmethod
    def _ids(values: list[Any]) -> list[str]:
        return [str(v.get("id")) if isinstance(v, dict) else str(v) for v in values]

    def _save(self, current: dict[str, Any] | None, given: dict[str, Any]) -> Response:
        problems = self._check_account(current, given)
        if problems:
            return self.fail(problems)
        account = (
            current
            if current is not None
            else {
                "id": self.next_id,
                "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "startDate": None,
                **dict.fromkeys(TEXT_FIELDS),
                "jobTitle": None,
                "department": None,
                "locations": [],
                "meta": {},
            }
        )
        if current is None:
            self.next_id += 1
        account.update({name: given[name] for name in TEXT_FIELDS if name in given})
        if isinstance(given.get("meta"), dict):
            account["meta"] = {**account["meta"], **given["meta"]}
            account["jobTitle"] = account["meta"].get("jobTitle")
            account["startDate"] = account["meta"].get("startDate")
        if given.get("department"):
            account["department"] = self.departments[self._ids([given["department"]])[0]]
        if isinstance(given.get("locations"), list) and given["locations"]:
            account["locations"] = [self.locations[i] for i in self._ids(given["locations"])]
        self.accounts[account["id"]] = account
        return Response(200, account)

    def _delete(self, account: dict[str, Any], request: Request) -> Response:
        term = request.param("termDate")
        if not term:
            return self.fail([problem(40012)])
        try:
            day = datetime.strptime(term, "%m/%d/%Y").date()
        except ValueError:
            return self.fail([problem(40027)])
        if day > self.today:
            return self.fail([problem(40028)])
        del self.accounts[account["id"]]
        return Response(200, {"removed": True})

    def _list_accounts(self, request: Request) -> Response:
        records = list(self.accounts.values())
        location, email, phone, meta_text = (request.param(n) for n in ("location", "email", "phone", "meta"))
        if location is not None:
            records = [a for a in records if location in self._ids(a.get("locations", []))]
        if email is not None:
            records = [a for a in records if a.get("email") == email]
        if phone is not None:
            records = [a for a in records if a.get("phone") and digits(a["phone"]) == digits(phone)]
        if meta_text is not None:
            try:
                meta = json.loads(meta_text)
            except ValueError:
                meta = None
            if not isinstance(meta, dict):
                return self.fail([(None, "meta must be stringified JSON object")])
            records = [a for a in records if all(str(a["meta"].get(k)) == str(v) for k, v in meta.items())]
        return self._page(request, records)

    def _page(self, request: Request, records: list[dict[str, Any]]) -> Response:
        limit_text = request.param("limit", str(self.default_limit)) or ""
        page_text = request.param("page", str(self.page_base)) or ""
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
            return self.fail([(None, "limit must be between 1 and 1000")])
        if not page_text.isdigit() or int(page_text) < self.page_base:
            return self.fail([(None, f"page must be a number from {self.page_base}")])
        limit = int(limit_text)
        start = (int(page_text) - self.page_base) * limit
        ordered = sorted(records, key=lambda r: int(r["id"]))
        return Response(200, {"total": len(ordered), "records": ordered[start : start + limit]})

    # ---- locations --------------------------------------------------------------------------------------

    def _save_location(self, current: dict[str, Any] | None, given: dict[str, Any]) -> Response:
        if current is None and not given.get("name"):
            return self.fail([(None, "name is required")])
        problems = [
            p
            for p in self._formats(
                {k: given[k] for k in ("phone", "state", "postal", "timezone") if k in given}, current
            )
            if p[0] not in (40029, 40030)
        ]
        if problems:
            return self.fail(problems)
        fields = {k: str(given[k]) for k in LOCATION_FIELDS if k in given}
        if current is None:
            return Response(200, self.locations[self.add_location(fields.pop("name"), **fields)])
        current.update(fields)
        return Response(200, current)
