"""Provides the OpenAPI post-processing hook that documents the API's JSON error responses on every operation."""
from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error of the API.",
    "properties": {
        "detail": {"type": "string", "description": "What is wrong, in words."},
        "code": {"type": "string", "description": "A stable code, e.g. invalid, not_found, not_authenticated."},
        "errors": {
            "type": "object",
            "description": "For invalid input: the messages of each field.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["detail", "code"],
}

_DESCRIPTIONS = {
    "400": "Invalid input: the message says what is wrong; nothing was stored.",
    "401": "Not signed in, or a bad token.",
    "403": "Not allowed (not signed in with a session, or not staff), or a bad token or CSRF token.",
    "404": "No such object, or not yours.",
    "409": "Conflict with the current state.",
    "413": "The request body is too large.",
    "415": "Unsupported request content type.",
    "429": "Too many requests: slow down (see Retry-After).",
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_METHODS = ("get", "put", "post", "patch", "delete")


def _codes(operation: dict[str, Any], method: str, path_params: bool) -> list[str]:
    params = operation.get("parameters", [])
    query = any(p.get("in") == "query" for p in params)
    in_path = path_params or any(p.get("in") == "path" for p in params)
    body = "requestBody" in operation
    codes = ["401", "403"]
    if body or query:
        codes.append("400")
    if in_path or query:
        codes.append("404")
    if body:
        codes += ["413", "415"]
    if method != "get":
        codes.append("429")
        if "400" not in codes:
            codes.append("400")  # e.g. a malformed body on a write without a declared one
    return codes


def error_responses_hook(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """Add the ``Error`` component and its responses (4xx) to every operation of the schema."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, item in result.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for code in _codes(operation, method, "{" in path):
                responses.setdefault(code, {"description": _DESCRIPTIONS[code]})
            for code, response in responses.items():
                if code.startswith("4") and "content" not in response:
                    response["content"] = {"application/json": {"schema": _ERROR_REF}}
    return result
