"""PostHog's private persons API (PROTOCOL 4): list, delete, bulk_delete, delete_events,
delete_recordings, under /api/projects/<id>/ and its /api/environments/<id>/ alias."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from consent_service.sandbox.persons import Person, Persons
from consent_service.sandbox.wire import (
    ApiError,
    Request,
    Response,
    json_response,
    method_not_allowed,
    not_found,
    validation_error,
)

PERSONS_PATH = re.compile(
    r"^/api/(?:projects|environments)/(?P<project>[^/]+)/persons(?:/(?P<rest>.*))?$"
)
BULK_LIMIT = 1000
PERSON_ACTIONS = ("delete_events", "delete_recordings")


def persons_view(
    request: Request, *, persons: Persons, personal_api_key: str, project_id: str
) -> Response:
    try:
        match = PERSONS_PATH.match(request.path)
        if match is None:
            raise not_found()
        body = _json_body(request)
        _authenticate(request, body, personal_api_key)
        if match["project"] not in (project_id, "@current"):
            raise not_found("Project not found.")  # PostHog hides projects you cannot see
        parts = [part for part in (match["rest"] or "").split("/") if part]
        return _route(request, body, parts, persons)
    except ApiError as exc:
        return exc.response()


def _route(request: Request, body: dict[str, Any], parts: list[str], persons: Persons) -> Response:
    method = request.method
    if not parts:
        _allow(method, "GET")
        return _list(request, persons)
    if parts == ["bulk_delete"]:
        _allow(method, "POST")
        return _bulk_delete(body, persons)
    person = _person(parts[0], persons)
    if len(parts) == 1 and method == "GET":
        return json_response(200, person.as_json())
    if len(parts) == 1:
        _allow(method, "DELETE")
        return _destroy(request, parts[0], person, persons)
    if len(parts) == 2 and parts[1] in PERSON_ACTIONS:
        _allow(method, "POST")
        return _action(parts[1], parts[0], person, persons)
    raise not_found()


def _list(request: Request, persons: Persons) -> Response:
    distinct_id = request.params.get("distinct_id")
    if distinct_id is not None:
        found = persons.find(distinct_id)
        results = [found] if found else []
    else:
        results = sorted(persons.all(), key=lambda person: person.created_at, reverse=True)
    data = {"results": [p.as_json() for p in results], "next": None, "previous": None}
    return json_response(200, data)


def _destroy(request: Request, person_id: str, person: Person, persons: Persons) -> Response:
    """Flags count by presence only: `?delete_events=false` deletes events too (PROTOCOL 4.3)."""
    persons.delete(
        how="destroy",
        ids=[person_id],
        persons=[person],
        delete_events="delete_events" in request.params,
        delete_recordings="delete_recordings" in request.params,
        keep_person="keep_person" in request.params,
    )
    return Response(202)


def _action(action: str, person_id: str, person: Person, persons: Persons) -> Response:
    persons.delete(
        how=action,
        ids=[person_id],
        persons=[person],
        delete_events=action == "delete_events",
        delete_recordings=action == "delete_recordings",
        keep_person=True,
    )
    return Response(202)


def _bulk_delete(body: dict[str, Any], persons: Persons) -> Response:
    """Flags here are read for truthiness from the JSON body, as PostHog does."""
    distinct_ids, ids = _id_list(body, "distinct_ids"), _id_list(body, "ids")
    if distinct_ids and ids:
        raise validation_error("You must provide either distinct_ids or ids, not both")
    if not distinct_ids and not ids:
        raise validation_error("You need to specify either distinct_ids or ids")
    if distinct_ids:
        found = [persons.find(distinct_id) for distinct_id in distinct_ids]
    else:
        found = [persons.get(person_id) for person_id in ids if _is_person_id(person_id)]
    unique = list({person.uuid: person for person in found if person}.values())
    summary = persons.delete(
        how="bulk_delete",
        ids=distinct_ids or ids,
        persons=unique,
        delete_events=bool(body.get("delete_events")),
        delete_recordings=bool(body.get("delete_recordings")),
        keep_person=bool(body.get("keep_person")),
    )
    return json_response(202, summary)


def _id_list(body: dict[str, Any], name: str) -> list[str]:
    values = body.get(name)
    if values is None:
        return []
    if not isinstance(values, list):
        raise validation_error(f"{name} must be a list")
    if len(values) > BULK_LIMIT:
        raise validation_error(f"You can only pass {BULK_LIMIT} {name} in one call")
    return [str(value) for value in values]


def _person(person_id: str, persons: Persons) -> Person:
    if not _is_person_id(person_id):
        raise validation_error(
            "The ID provided does not look like a personID. If you are using a distinctId, "
            f"please use /persons?distinct_id={person_id} instead."
        )
    person = persons.get(person_id)
    if person is None:
        raise not_found("Person not found.")
    return person


def _is_person_id(value: Any) -> bool:
    text = str(value)
    if text.isdigit():
        return True
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise method_not_allowed(method)


def _authenticate(request: Request, body: dict[str, Any], personal_api_key: str) -> None:
    """As PostHog looks the key up: Authorization header, then body, then query."""
    scheme, _, token = request.header("authorization").partition(" ")
    key = token.strip() if scheme.lower() == "bearer" else ""
    source = "Authorization header"
    for where, data in (("body", body), ("query string", request.params)):
        if not key and isinstance(data.get("personal_api_key"), str):
            key, source = data["personal_api_key"], where
    if not key:
        raise ApiError(
            401,
            "authentication_error",
            "not_authenticated",
            "Authentication credentials were not provided.",
        )
    if key != personal_api_key:
        raise ApiError(
            401,
            "authentication_error",
            "authentication_failed",
            f"Personal API key found in request {source} is invalid.",
        )


def _json_body(request: Request) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    try:
        data = json.loads(request.body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "validation_error", "parse_error", f"JSON parse error - {exc}") from exc
    if not isinstance(data, dict):
        raise validation_error("Expected a JSON object.")
    return data
