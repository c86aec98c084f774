"""Response contract checks shared by the API tests: the one error envelope, and bodies
validated against the component schemas of the committed openapi/schema.yaml."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "openapi" / "schema.yaml"
ENVELOPE_KEYS = {"type", "code", "detail", "attr", "errors", "extra", "request_id"}


@functools.cache
def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(SCHEMA_PATH.read_text())
    return document


def component_properties(name: str) -> set[str]:
    return set(openapi_document()["components"]["schemas"][name]["properties"])


def assert_matches_schema(body: Any, name: str) -> None:
    """The body has exactly the component's properties, and validates against it deeply."""
    schema = openapi_document()["components"]["schemas"][name]
    assert set(body) == set(schema["properties"]), f"{name} keys differ from the schema"
    errors = [error.message for error in _validator(name).iter_errors(body)]
    assert not errors, f"{name} does not match openapi/schema.yaml: {errors}"


def assert_error(
    response: Any, status: int, code: str, *, attr: str | None = None, error_type: str | None = None
) -> dict[str, Any]:
    """The response is the error envelope with this status, code and first attr."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json", response["Content-Type"]
    body: dict[str, Any] = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert_matches_schema(body, "Error")
    assert body["code"] == code, body
    assert body["attr"] == attr, body
    if attr is not None:
        assert body["errors"][0]["attr"] == attr
    if error_type is not None:
        assert body["type"] == error_type, body
    assert body["request_id"] == response["X-Request-ID"]
    return body


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    components = _as_json_schema(openapi_document()["components"])
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": components})


def _as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 to JSON Schema: `nullable` becomes a null type, and objects with declared
    properties are closed, so an undocumented key fails validation."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _as_json_schema(value) for key, value in node.items() if key != "example"}
    if converted.pop("nullable", False):
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    if "properties" in converted and isinstance(converted["properties"], dict):
        converted.setdefault("additionalProperties", False)
    return converted
