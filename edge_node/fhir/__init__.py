"""FHIR R4 pieces of the edge API: validation, search, bundles, outcomes, capability."""
