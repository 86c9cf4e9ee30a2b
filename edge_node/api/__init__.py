"""The edge's HTTP API on the LAN: FHIR R4 at /fhir, plus /audit and /status."""
