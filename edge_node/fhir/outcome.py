"""OperationOutcome bodies for refused requests: a diagnostic a person can act on."""

from __future__ import annotations

from typing import Any

import orjson

from edge_node.errors import EdgeError


def outcome(severity: str, code: str, diagnostics: str) -> dict[str, Any]:
    """An OperationOutcome with one issue."""
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]}


def error_outcome(err: EdgeError) -> dict[str, Any]:
    """The OperationOutcome of `err`: its message, then what to do, and its stable code."""
    text = f"{err.message}. {err.hint}" if err.hint else err.message
    body = outcome("error", err.fhir_code, text)
    body["issue"][0]["details"] = {"coding": [{"system": "urn:chartsync:error",
                                               "code": err.code}]}
    return body


def error_body(err: EdgeError) -> bytes:
    return orjson.dumps(error_outcome(err))
