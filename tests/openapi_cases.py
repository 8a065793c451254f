"""Requests built from our OpenAPI document: every operation, a plausible request for it, and
every field and parameter in it, so that tests can replace one value at a time.

A plausible request is what the document allows (enums, patterns, ranges, formats); it may still
fail our business rules (areas that must exist, jurisdiction), but it gets through the parser,
so a value put in its place is what the answer is about.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

METHODS = ("get", "put", "post", "patch", "delete")
JSON = "application/json"
# Values by field name: a place inside the demo data (Jianwai, Chaoyang), periods that end later.
_BY_NAME = {"lon": 116.45536, "lat": 39.90968, "long": 116.45536}
_LATER = ("to", "ends_at")
# Strings tried, in order, against a `pattern`.
_PATTERN_CANDIDATES = (
    "theft", "traffic", "wgs84", "ab", "ABCDEFGH23", "abcdefghij", "09:00", "2026-11",
    "116.4,39.9,116.5,40.0", "110105001024", "aa_bb",
)  # fmt: skip


@dataclass(frozen=True)
class Leaf:
    """One value of a request: in the JSON body (`path` of keys and indexes), or a parameter
    (`path` is its name)."""

    location: str  # json, query, path or header
    path: tuple[str | int, ...]
    schema: dict

    @property
    def pointer(self) -> str:
        return "/" + "/".join(str(part) for part in self.path)

    @property
    def type(self) -> str | None:
        return self.schema.get("type")

    @property
    def format(self) -> str | None:
        return self.schema.get("format")


@dataclass
class Operation:
    method: str
    path: str
    secured: bool
    parameters: list[dict]
    body_schema: dict | None
    body_type: str | None
    leaves: list[Leaf] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


class Spec:
    def __init__(self, document: dict):
        self.document = document

    def resolve(self, node: dict) -> dict:
        while "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        for choice in ("anyOf", "oneOf"):  # a nested schema or null: take the schema
            if choice in node:
                options = [self.resolve(option) for option in node[choice]]
                chosen = next((o for o in options if "properties" in o), options[0])
                return {**{k: v for k, v in node.items() if k != choice}, **chosen}
        if "allOf" in node:
            merged: dict = {k: v for k, v in node.items() if k != "allOf"}
            for part in node["allOf"]:
                part = self.resolve(part)
                merged.setdefault("properties", {}).update(part.get("properties", {}))
                merged.setdefault("required", []).extend(part.get("required", []))
                merged.update({k: v for k, v in part.items() if k not in merged})
            return merged
        return node

    def operations(self) -> list[Operation]:
        found = []
        for path, item in self.document["paths"].items():
            shared = item.get("parameters", [])
            for method in METHODS:
                if method not in item:
                    continue
                op = item[method]
                parameters = [self.resolve(p) for p in [*shared, *op.get("parameters", [])]]
                content = op.get("requestBody", {}).get("content", {})
                body_type = next(iter(content), None)
                body_schema = self.resolve(content[body_type]["schema"]) if body_type else None
                operation = Operation(
                    method, path, bool(op.get("security")), parameters, body_schema, body_type
                )
                for parameter in parameters:
                    operation.leaves.append(
                        Leaf(parameter["in"], (parameter["name"],), parameter.get("schema", {}))
                    )
                if body_type == JSON:
                    operation.leaves.extend(self._leaves(body_schema, ()))
                found.append(operation)
        return found

    def _leaves(self, schema: dict, path: tuple, depth: int = 0) -> Iterator[Leaf]:
        schema = self.resolve(schema)
        if depth > 8:
            return
        if schema.get("type") == "object" or "properties" in schema:
            for name, sub in schema.get("properties", {}).items():
                if not self.resolve(sub).get("readOnly"):
                    yield from self._leaves(sub, (*path, name), depth + 1)
        elif schema.get("type") == "array":
            if schema.get("x-judged-per-item"):
                # Items answered one by one (200, `rejected` with a reason), never a 422 for the
                # request: their hostile values are tested where that rule lives
                # (tests/patrols/test_checkins.py).
                return
            yield from self._leaves(schema.get("items", {}), (*path, 0), depth + 1)
        elif path:
            yield Leaf("json", path, schema)

    # -- plausible values ---------------------------------------------------------------------

    def example(self, schema: dict, depth: int = 0, name: str | None = None) -> Any:
        schema = self.resolve(schema)
        if "enum" in schema:
            return next(v for v in schema["enum"] if v is not None)
        if "example" in schema:
            return schema["example"]
        if schema.get("default") is not None:
            return schema["default"]
        if name in _BY_NAME and schema.get("type") == "number":
            return _BY_NAME[name]
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            if depth > 8:
                return {}
            return {
                key: self.example(sub, depth + 1, key)
                for key, sub in schema.get("properties", {}).items()
                if not self.resolve(sub).get("readOnly")
            }
        if kind == "array":
            count = max(1, schema.get("minItems", 1))
            return [self.example(schema.get("items", {}), depth + 1) for _ in range(count)]
        if kind == "integer":
            return int(_within(schema, 1))
        if kind == "number":
            return float(_within(schema, 1.0))
        if kind == "boolean":
            return False
        return _string(schema, later=name in _LATER)

    def request(
        self, operation: Operation, path_values: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """A plausible request: path, query, headers and JSON body (None without one);
        `path_values` replace the examples of path parameters."""
        path, query, headers = operation.path, {}, {}
        for parameter in operation.parameters:
            name = parameter["name"]
            value = self.example(parameter.get("schema", {}), name=name)
            if parameter["in"] == "path":
                value = (path_values or {}).get(name, value)
                path = path.replace("{" + name + "}", quote(str(value), safe=""))
            elif parameter["in"] == "query":
                query[name] = _query_text(value)
            elif parameter["in"] == "header":
                headers[name] = str(uuid.uuid4()) if name == "Idempotency-Key" else str(value)
        body = None
        if operation.body_type == JSON:
            body = self.example(operation.body_schema)
        return {"path": path, "query": query, "headers": headers, "body": body}


def _within(schema: dict, default: float) -> float:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return (low + high) / 2 if schema.get("type") == "number" else low
    if low is not None:
        return low
    if high is not None:
        return min(high, default)
    return default


def _string(schema: dict, later: bool = False) -> str:
    kind = schema.get("format")
    now = dt.datetime.now(dt.UTC)
    if kind == "uuid":
        return str(uuid.uuid4())
    if kind == "date-time":
        return (now + dt.timedelta(hours=1 if later else -1)).isoformat()
    if kind == "date":
        return now.date().isoformat()
    pattern = schema.get("pattern")
    if pattern:
        for candidate in _PATTERN_CANDIDATES:
            if re.fullmatch(pattern, candidate):
                return candidate
    length = max(schema.get("minLength", 0), 5)
    text = ("观察到可疑情况" * (length // 7 + 1))[:length]
    return text[: schema.get("maxLength", length)]


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value)


def with_value(document: Any, path: tuple, value: Any) -> Any:
    """A deep copy of `document` with `value` at `path` (made where missing)."""
    document = copy.deepcopy(document)
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return document
