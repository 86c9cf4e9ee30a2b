"""Search tokens of a resource: what `search_tokens` holds for each served parameter.

Tokens are (param, value) pairs; the search module queries them with the same
normalisation, so the two must change together:

    Patient  identifier        "system|value" and identifier:value "value"
             name              each of family, given, text, lower-cased, NFKC
             birthdate         the birthDate string (YYYY, YYYY-MM or YYYY-MM-DD)
             name-birthdate    "<birthDate>|<name key>" per name (`fhir.patient_match`:
                               the index behind the likely-duplicate list)
    others   patient           "Patient/<id>" of the patient reference
             subject           "<Type>/<id>" of `subject` (types that have one)

`patient_ref` is the patient a resource belongs to (a Patient's own
"Patient/<id>"), stored on the resources row and in audit rows.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from edge_node.fhir.patient_match import NAME_BIRTHDATE_PARAM, name_birthdate_tokens
from edge_node.fhir.types import PATIENT_ELEMENT


def normalize_name(text: str) -> str:
    """The form name tokens and `name=` queries are compared in."""
    return unicodedata.normalize("NFKC", text).casefold().strip()


def reference_key(reference: Any) -> str | None:
    """"Type/id" of a reference string (relative, absolute URL or with _history); else None."""
    if not isinstance(reference, str) or not reference or reference.startswith(("#", "urn:")):
        return None
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) < 2 or not parts[-2] or not parts[-1]:
        return None
    return f"{parts[-2]}/{parts[-1]}"


def _ref(resource: dict[str, Any], element: str) -> str | None:
    value = resource.get(element)
    return reference_key(value.get("reference")) if isinstance(value, dict) else None


def patient_ref(resource_type: str, resource_id: str, resource: dict[str, Any] | None
                ) -> str | None:
    """The "Patient/<id>" a resource belongs to, or None."""
    if resource_type == "Patient":
        return f"Patient/{resource_id}"
    element = PATIENT_ELEMENT.get(resource_type)
    if element is None or resource is None:
        return None
    ref = _ref(resource, element)
    return ref if ref is not None and ref.startswith("Patient/") else None


def index_tokens(resource_type: str, resource: dict[str, Any]) -> list[tuple[str, str]]:
    """(param, value) tokens of a live resource, without repeats."""
    out: set[tuple[str, str]] = set()
    if resource_type == "Patient":
        for ident in resource.get("identifier") or ():
            if isinstance(ident, dict) and isinstance(ident.get("value"), str):
                system = ident.get("system") if isinstance(ident.get("system"), str) else ""
                out.add(("identifier", f"{system}|{ident['value']}"))
                out.add(("identifier:value", ident["value"]))
        for name in resource.get("name") or ():
            if not isinstance(name, dict):
                continue
            parts = [name.get("family"), name.get("text"), *(name.get("given") or ())]
            for part in parts:
                if isinstance(part, str) and part.strip():
                    out.add(("name", normalize_name(part)))
        if isinstance(resource.get("birthDate"), str):
            out.add(("birthdate", resource["birthDate"]))
        out.update((NAME_BIRTHDATE_PARAM, v) for v in name_birthdate_tokens(resource))
        return sorted(out)
    pref = patient_ref(resource_type, str(resource.get("id", "")), resource)
    if pref is not None:
        out.add(("patient", pref))
    if PATIENT_ELEMENT.get(resource_type) == "subject":
        subject = _ref(resource, "subject")
        if subject is not None:
            out.add(("subject", subject))
    return sorted(out)
