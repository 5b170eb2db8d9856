"""Request bodies checked against the swagger definitions, as CML's JSON decoding does.

CML decodes a body into its protobuf message (grpc-gateway, jsonpb): a value of the wrong JSON
type is refused with 400 INVALID_ARGUMENT ("json: cannot unmarshal number into Go value of type
string"), while the lenient parts of jsonpb are kept: numbers may come quoted (int64 fields come
back as strings, so clients send them either way), ``null`` means unset, and fields the message
does not have are ignored.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from cml_simulator.common import SimError

DEFINITIONS = json.loads((Path(__file__).with_name("cml-api-v2-swagger.json")).read_text())["definitions"]


def check_body(body, definition: str) -> dict:
    """``body`` (decoded JSON) if it fits ``definition``; else SimError 400 naming the field."""
    if not isinstance(body, dict):
        raise SimError(400, f"json: cannot unmarshal {json_type(body)} into Go value of type "
                            f"map[string]json.RawMessage (the body must be a JSON object)")
    _check_object(body, DEFINITIONS[definition], definition)
    return body


def json_type(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _check_object(body: dict, schema: dict, where: str) -> None:
    for key, value in body.items():
        prop = schema.get("properties", {}).get(key)
        if prop is not None and value is not None:  # unknown fields and nulls: ignored/unset
            _check(value, prop, f"{where}.{key}")


def _check(value, prop: dict, where: str) -> None:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        target = DEFINITIONS[name]
        if target.get("type") == "object":
            if not isinstance(value, dict):
                _refuse(value, name, where)
            _check_object(value, target, name)
        elif "enum" in target and value not in target["enum"]:
            raise SimError(400, f"{where}: unknown value {value!r} for enum {name}")
        return
    kind, fmt = prop.get("type"), prop.get("format")
    if kind == "string" and fmt in ("int64", "uint64"):  # int64 travels as a string
        _integer(value, fmt, where)
    elif kind == "string":
        if not isinstance(value, str):
            _refuse(value, "string", where)
    elif kind == "integer":
        _integer(value, fmt or "int64", where)
    elif kind == "number":
        _number(value, where)
    elif kind == "boolean":
        if not isinstance(value, bool):
            _refuse(value, "bool", where)
    elif kind == "array":
        if not isinstance(value, list):
            _refuse(value, "[]" + _go_name(prop.get("items", {})), where)
        for n, item in enumerate(value):
            _check(item, prop.get("items", {}), f"{where}[{n}]")
    elif kind == "object":
        if not isinstance(value, dict):
            _refuse(value, "map[string]" + _go_name(prop.get("additionalProperties", {})), where)
        for key, item in value.items():
            _check(item, prop.get("additionalProperties", {}), f"{where}[{key!r}]")


def _integer(value, go_type: str, where: str) -> None:
    """jsonpb takes integers as numbers or quoted numbers, but not fractions or booleans."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip()) if value.strip() else None
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or \
            not math.isfinite(number) or number != int(number):
        _refuse(value, go_type, where)


def _number(value, where: str) -> None:
    if isinstance(value, str):
        try:
            float(value)
            return
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _refuse(value, "float64", where)


def _go_name(prop: dict) -> str:
    return {"string": "string", "integer": "int32", "number": "float64",
            "boolean": "bool"}.get(prop.get("type"), "json.RawMessage")


def _refuse(value, go_type: str, where: str) -> None:
    raise SimError(400, f"json: cannot unmarshal {json_type(value)} into Go value of type "
                        f"{go_type} (field {where})")
