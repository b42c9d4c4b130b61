"""The OpenAPI response check itself (tests/openapi_check.py): it must catch drift, not pass everything."""

from __future__ import annotations

from typing import Any

import pytest

from tests.openapi_check import ResponseChecker, SchemaError, Validator

ID = {"type": "integer", "minimum": 1}
ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "paths": {
        "/api/v1/clients": {"get": {"responses": {
            "200": {"content": {"application/json": {"schema": {
                "type": "object", "required": ["items", "next_cursor"],
                "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Client"}},
                               "next_cursor": {"type": ["string", "null"]}}}}}},
            "401": ERROR}}},
        "/api/v1/clients/{id}": {
            "get": {"responses": {
                "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Client"}}}},
                "404": ERROR}},
            "delete": {"responses": {"204": {"description": "No content"}}}},
        "/api/v1/clients/merge": {"post": {"responses": {"200": {"description": "OK"}}}},
        "/api/v1/calls/{id}/recording": {"get": {"responses": {
            "200": {"content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}}}}}},
    },
    "components": {"schemas": {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message", "fields"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}}},
        "Ref": {"type": "object", "properties": {"id": ID, "name": {"type": ["string", "null"]}}},
        "Client": {"type": "object", "required": ["id", "kind"], "properties": {
            "id": ID, "kind": {"enum": ["company", "person"]},
            "manager": {"oneOf": [{"$ref": "#/components/schemas/Ref"}, {"type": "null"}]},
            "inn": {"type": "string", "nullable": True},
            "custom": {"type": "object", "additionalProperties": True},
            "tags": {"type": "array", "items": {"type": "string"}}}},
    }},
}


@pytest.fixture
def validator() -> Validator:
    return Validator(DOCUMENT)


def client_ref() -> dict[str, Any]:
    return {"$ref": "#/components/schemas/Client"}


def test_a_conforming_value_has_no_errors(validator: Validator) -> None:
    value = {"id": 1, "kind": "company", "manager": {"id": 2, "name": None}, "inn": None,
             "custom": {"anything": [1, {"x": None}]}, "tags": ["vip"]}
    assert validator.errors(client_ref(), value) == []


def test_an_undeclared_property_is_an_error_with_its_path(validator: Validator) -> None:
    page = {"type": "object", "properties": {"items": {"type": "array", "items": client_ref()}}}
    value = {"items": [{"id": 1, "kind": "person"}] * 3 + [{"id": 4, "kind": "person", "manager": {
        "id": 2, "name": "Анна", "login": "anna"}}]}
    errors = validator.errors(page, value)
    assert len(errors) == 1
    assert errors[0].startswith("$.items[3].manager: matches none of oneOf")
    assert "$.items[3].manager.login: not declared" in errors[0]
    extra = {"id": 1, "kind": "person", "extra": 1}
    assert validator.errors(client_ref(), extra) == ["$.extra: not declared"]
    assert validator.errors({"type": "object"}, {"a": 1}) == ["$.a: not declared"]
    odd = {"odd key": 1}
    assert validator.errors({"type": "object", "properties": {}}, odd) == ['$["odd key"]: not declared']


def test_additional_properties_true_or_a_schema(validator: Validator) -> None:
    assert validator.errors({"type": "object", "additionalProperties": True}, {"a": 1}) == []
    fields = {"type": "object", "additionalProperties": {"type": "string"}}
    assert validator.errors(fields, {"name": "required"}) == []
    assert validator.errors(fields, {"name": 5}) == ["$.name: expected string, got integer 5"]


def test_a_wrong_type(validator: Validator) -> None:
    assert validator.errors(client_ref(), {"id": "1", "kind": "person"}) == [
        '$.id: expected integer, got string "1"']
    assert validator.errors({"type": "integer"}, True) == ["$: expected integer, got boolean true"]
    assert validator.errors({"type": "number"}, 3) == []
    assert validator.errors({"type": "integer"}, 3.0) == []
    assert validator.errors({"type": "integer"}, 3.5) == ["$: expected integer, got number 3.5"]
    assert validator.errors({"type": ["string", "null"]}, None) == []
    assert validator.errors({"type": ["string", "null"]}, 0) == ["$: expected string|null, got integer 0"]
    assert validator.errors({"type": "array", "items": {"type": "string"}}, ["a", 1]) == [
        "$[1]: expected string, got integer 1"]
    assert validator.errors(ID, 0) == ["$: 0 is below the minimum 1"]


def test_a_missing_required_property(validator: Validator) -> None:
    assert validator.errors(client_ref(), {"id": 1}) == ["$.kind: required, missing"]


def test_a_bad_enum_value(validator: Validator) -> None:
    assert validator.errors(client_ref(), {"id": 1, "kind": "robot"}) == [
        '$.kind: "robot" is not one of ["company", "person"]']
    assert validator.errors({"enum": [1, None]}, True) == ["$: true is not one of [1, null]"]
    assert validator.errors({"enum": ["in", None]}, None) == []


def test_nullable_and_one_of(validator: Validator) -> None:
    assert validator.errors({"type": "string", "nullable": True}, None) == []
    assert validator.errors({"type": "string"}, None) == ["$: expected string, got null null"]
    assert validator.errors(client_ref(), {"id": 1, "kind": "person", "manager": None}) == []
    [error] = validator.errors(client_ref(), {"id": 1, "kind": "person", "manager": 5})
    assert error.startswith("$.manager: matches none of oneOf")
    both = {"oneOf": [{"type": "integer"}, {"type": "number"}]}
    assert validator.errors(both, 2) == ["$: matches 2 of oneOf, exactly one must match"]
    assert validator.errors({"anyOf": [{"type": "integer"}, {"type": "number"}]}, 2) == []


def test_all_of_closes_the_object_over_the_union_of_its_branches(validator: Validator) -> None:
    full = {"allOf": [client_ref(), {"type": "object", "properties": {"messages": {"type": "array"}}}]}
    assert validator.errors(full, {"id": 1, "kind": "person", "messages": []}) == []
    assert validator.errors(full, {"id": 1, "kind": "person", "other": 1}) == ["$.other: not declared"]
    assert validator.errors(full, {"id": 1, "messages": 1}) == [
        "$.kind: required, missing", "$.messages: expected array, got integer 1"]


def test_what_the_check_does_not_understand_is_an_error_not_a_pass(validator: Validator) -> None:
    with pytest.raises(SchemaError, match="patternProperties"):
        validator.errors({"type": "object", "patternProperties": {}}, {})
    with pytest.raises(SchemaError, match="unresolvable"):
        validator.errors({"$ref": "#/components/schemas/Nope"}, {})


def test_responses_are_matched_to_their_operation_and_status() -> None:
    checker = ResponseChecker(DOCUMENT)
    assert checker.templates("/api/v1/clients/merge") == ["/api/v1/clients/merge", "/api/v1/clients/{id}"]
    ok = b'{"id": 5, "kind": "company"}'
    assert checker.problems("GET", "/api/v1/clients/5", 200, "application/json", ok) == []
    assert checker.problems("HEAD", "/api/v1/clients/5", 200, "application/json", b"") == []
    # GET /clients/merge is no operation of the literal path: the router takes it for {id}
    assert checker.problems("GET", "/api/v1/clients/merge", 404, "application/json",
                            b'{"error": {"code": "not_found", "message": "x", "fields": {}}}') == []
    assert checker.problems("GET", "/api/v1/clients/5", 200, "application/json", b'{"id": 5}') == [
        "$.kind: required, missing"]
    [undeclared] = checker.problems("GET", "/api/v1/clients/5", 403, "application/json", b"{}")
    assert undeclared.startswith("status 403 is not declared for GET /api/v1/clients/{id}")
    assert checker.problems("DELETE", "/api/v1/clients/5", 204, "application/octet-stream", b"") == []
    [no_json] = checker.problems("POST", "/api/v1/clients/merge", 200, "application/json", b"{}")
    assert "declares no content" in no_json
    [no_operation] = checker.problems("PATCH", "/api/v1/clients", 200, "application/json", b"{}")
    assert no_operation.startswith("no operation PATCH /api/v1/clients")
    assert checker.problems("PATCH", "/api/v1/clients", 405, "text/plain", b"...") == []
    assert checker.problems("GET", "/api/v1/nothing", 404, "text/plain", b"...") == []
    [unrouted] = checker.problems("GET", "/api/v1/nothing", 200, "application/json", b"{}")
    assert unrouted.startswith("no path template")
    assert checker.problems("GET", "/api/v1/calls/1/recording", 200, "audio/wav", b"...") == []
    [media] = checker.problems("GET", "/api/v1/calls/1/recording", 200, "text/html", b"...")
    assert "declares audio/*" in media
