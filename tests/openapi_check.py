"""Responses checked against the hub's own OpenAPI document (issue 14): schema drift cannot pass unseen.

``Validator`` is a JSON-Schema validator for exactly the subset the hub's document uses — ``type``
(one or a list, ``"null"`` among them), ``properties``, ``required``, ``additionalProperties``,
``items``, ``enum``, ``const``, ``oneOf``, ``anyOf``, ``allOf``, ``$ref`` (a JSON pointer into the
document, ``#/components/schemas/...``), ``nullable`` (OpenAPI 3.0), ``minimum``/``maximum``,
``minLength``/``maxLength``; ``format`` and the annotations are ignored; any other keyword is an error
of the schema (the check never silently skips what it does not understand). Objects are CLOSED: a
property the value carries and the schema does not declare is an error, unless the schema says
``additionalProperties`` is true or a schema. Each error names its JSON path::

    $.items[3].manager.name: not declared

``ResponseChecker`` finds the operation for a request (its path matched to the document's path
templates, ``/api/v1/clients/{id}``; a literal segment wins over a parameter) and checks a response
against the operation's declared response for that status: an undeclared operation or status is an
error too (the document must list every status a route answers), and so is a JSON body where the
document declares none, or the other way round.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]

ANNOTATIONS = frozenset({"description", "format", "title", "example", "examples", "default", "deprecated",
                         "readOnly", "writeOnly", "$comment", "contentMediaType", "contentEncoding"})
KEYWORDS = frozenset({"$ref", "type", "properties", "required", "additionalProperties", "items", "enum",
                      "const", "oneOf", "anyOf", "allOf", "nullable", "minimum", "maximum", "minLength",
                      "maxLength"}) | ANNOTATIONS
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SchemaError(Exception):
    """The schema itself uses something this check does not understand."""


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, name: str) -> bool:
    actual = json_type(value)
    if name == actual:
        return True
    if name == "number":
        return actual == "integer"
    if name == "integer":  # JSON Schema: 1.0 is an integer
        return actual == "number" and math.isfinite(value) and float(value).is_integer()
    return False


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``True`` is not ``1``, ``1`` is ``1.0``."""
    ta, tb = json_type(a), json_type(b)
    if {ta, tb} <= {"integer", "number"}:
        return bool(a == b)
    if ta != tb:
        return False
    if ta == "array":
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if ta == "object":
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _IDENTIFIER.match(key) else f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


class Validator:
    """Validates JSON values against schemas of one document (``$ref`` resolves inside it)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._refs: dict[str, Schema] = {}

    def resolve(self, pointer: str) -> Schema:
        if pointer not in self._refs:
            if not pointer.startswith("#/"):
                raise SchemaError(f"only local references are supported: {pointer}")
            node: Any = self.document
            for part in pointer[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(node, dict) or part not in node:
                    raise SchemaError(f"unresolvable reference {pointer}")
                node = node[part]
            if not isinstance(node, dict):
                raise SchemaError(f"reference {pointer} is not a schema")
            self._refs[pointer] = node
        return self._refs[pointer]

    def errors(self, schema: Schema | bool, value: Any, path: str = "$") -> list[str]:
        """Every way ``value`` breaks ``schema``, as ``path: what`` lines (empty: it conforms)."""
        return list(self._errors(schema, value, path, True))

    def _errors(self, schema: Schema | bool, value: Any, path: str, closed: bool) -> Iterator[str]:
        """``closed``: whether this schema decides which properties an object may carry (not so for a
        branch of ``allOf``: there the union of the branches' properties decides)."""
        if schema is True:
            return
        if schema is False:
            yield f"{path}: not allowed here"
            return
        if not isinstance(schema, dict):
            raise SchemaError(f"{path}: a schema must be an object or a boolean, not {_show(schema)}")
        unknown = schema.keys() - KEYWORDS
        if unknown:
            raise SchemaError(f"{path}: unsupported schema keyword(s) {sorted(unknown)}")
        if value is None and schema.get("nullable") is True:
            return
        if "$ref" in schema:
            yield from self._errors(self.resolve(schema["$ref"]), value, path, closed and not _shapes(schema))
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(_is_type(value, t) for t in types):
                yield f"{path}: expected {'|'.join(types)}, got {json_type(value)} {_show(value)}"
                return
        if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
            yield f"{path}: {_show(value)} is not one of {_show(schema['enum'])}"
        if "const" in schema and not _same(value, schema["const"]):
            yield f"{path}: {_show(value)} is not {_show(schema['const'])}"
        yield from self._combinators(schema, value, path, closed)
        kind = json_type(value)
        if kind == "object":
            yield from self._object(schema, value, path, closed)
        elif kind == "array" and "items" in schema:
            for index, item in enumerate(value):
                yield from self._errors(schema["items"], item, child(path, index), True)
        elif kind in ("integer", "number"):
            if "minimum" in schema and value < schema["minimum"]:
                yield f"{path}: {value} is below the minimum {schema['minimum']}"
            if "maximum" in schema and value > schema["maximum"]:
                yield f"{path}: {value} is above the maximum {schema['maximum']}"
        elif kind == "string":
            if "minLength" in schema and len(value) < schema["minLength"]:
                yield f"{path}: shorter than {schema['minLength']} characters"
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                yield f"{path}: longer than {schema['maxLength']} characters"

    def _combinators(self, schema: Schema, value: Any, path: str, closed: bool) -> Iterator[str]:
        for sub in schema.get("allOf", ()):
            yield from self._errors(sub, value, path, False)
        for keyword in ("oneOf", "anyOf"):
            if keyword not in schema:
                continue
            # each branch closes the object itself (unless this schema has properties of its own)
            branch_closed = closed and not _shapes(schema)
            failures = [list(self._errors(sub, value, path, branch_closed)) for sub in schema[keyword]]
            matched = sum(1 for f in failures if not f)
            if matched == 0:
                detail = "; ".join(f"#{i}: {', '.join(f[:3])}" for i, f in enumerate(failures))
                yield f"{path}: matches none of {keyword} ({detail})"
            elif keyword == "oneOf" and matched > 1:
                yield f"{path}: matches {matched} of oneOf, exactly one must match"

    def _declared(self, schema: Schema | bool) -> tuple[set[str], Any]:
        """The properties a schema and its ``allOf`` branches declare, and its additionalProperties."""
        if not isinstance(schema, dict):
            return set(), schema
        names = set(schema.get("properties", {}))
        extra = schema.get("additionalProperties", False)
        subs = list(schema.get("allOf", ()))
        if "$ref" in schema:
            subs.append(self.resolve(schema["$ref"]))
        for sub in subs:
            more, sub_extra = self._declared(sub)
            names |= more
            if sub_extra is True and extra is False:
                extra = True
        return names, extra

    def _object(self, schema: Schema, value: dict[str, Any], path: str, closed: bool) -> Iterator[str]:
        properties: dict[str, Any] = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                yield f"{child(path, name)}: required, missing"
        # a bare $ref, oneOf or anyOf leaves closing the object to the schemas it names
        closes = closed and (_shapes(schema) or not any(k in schema for k in ("$ref", "oneOf", "anyOf")))
        declared, extra = self._declared(schema) if closes else (set(properties), True)
        for name, item in value.items():
            if name in properties:
                yield from self._errors(properties[name], item, child(path, name), True)
            elif name in declared or extra is True:
                continue
            elif extra is False:
                yield f"{child(path, name)}: not declared"
            else:
                yield from self._errors(extra, item, child(path, name), True)


def _shapes(schema: Schema) -> bool:
    """Whether a schema says itself which properties an object has (not only through $ref/oneOf/anyOf)."""
    return any(k in schema for k in ("properties", "additionalProperties", "allOf"))


@dataclass(frozen=True)
class _Template:
    path: str
    segments: tuple[str | None, ...]  # None: a {parameter}
    literals: int


@dataclass
class ResponseChecker:
    """Checks responses against the operations of one OpenAPI document."""

    document: dict[str, Any]
    validator: Validator = field(init=False)
    _by_length: dict[int, list[_Template]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.validator = Validator(self.document)
        for path in self.document["paths"]:
            segments = tuple(None if re.fullmatch(r"{\w+}", s) else s for s in path.split("/"))
            template = _Template(path, segments, sum(s is not None for s in segments))
            self._by_length.setdefault(len(segments), []).append(template)
        for templates in self._by_length.values():
            templates.sort(key=lambda t: -t.literals)  # a literal segment wins over a parameter

    def templates(self, path: str) -> list[str]:
        """The document's path templates ``path`` matches, the most literal first."""
        segments = path.split("/")
        return [t.path for t in self._by_length.get(len(segments), ())
                if all(s is None or s == given for s, given in zip(t.segments, segments, strict=True))]

    def problems(self, method: str, path: str, status: int, content_type: str, body: bytes) -> list[str]:
        """What is wrong with this response by the document (empty: nothing)."""
        method = "get" if method.upper() == "HEAD" else method.lower()
        templates = self.templates(path)
        operations = [(t, self.document["paths"][t][method]) for t in templates
                      if method in self.document["paths"][t]]
        is_json = _is_json(content_type)
        if not operations:
            # nothing is routed there: the router's own answers, with the usual error body
            if (status == 404 and not templates) or (status == 405 and templates):
                return self._body(self.document["components"]["schemas"].get("Error", {}), body) \
                    if is_json and body else []
            where = f"no operation {method.upper()} {templates[0]}" if templates else "no path template"
            return [f"{where} in the document, yet the hub answered {status}"]
        template, operation = operations[0]
        declared = operation.get("responses", {})
        response = declared.get(str(status)) or declared.get(f"{str(status)[0]}XX") or declared.get("default")
        if response is None:
            return [f"status {status} is not declared for {method.upper()} {template} "
                    f"(declared: {', '.join(sorted(declared))})"]
        content: dict[str, Any] = response.get("content") or {}
        if not body:
            return []  # HEAD, 204, an empty answer
        if is_json:
            json_content = next((c for t, c in content.items() if _is_json(t)), None)
            if json_content is None:
                return [f"a JSON body, but {method.upper()} {template} {status} declares "
                        f"{', '.join(content) or 'no content'}"]
            return self._body(json_content.get("schema", {}), body)
        if content and not any(_media_matches(t, content_type) for t in content):
            return [f"a {content_type or 'typeless'} body, but {method.upper()} {template} {status} declares "
                    f"{', '.join(content)}"]
        return []

    def _body(self, schema: Schema, body: bytes) -> list[str]:
        try:
            value = json.loads(body)
        except ValueError as exc:
            return [f"$: not JSON ({exc})"]
        return self.validator.errors(schema, value)


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _media_matches(declared: str, actual: str) -> bool:
    if declared in ("*/*", actual):
        return True
    return declared.endswith("/*") and actual.startswith(declared[:-1])
