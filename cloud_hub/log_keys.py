"""Names of the ids that hub log lines carry (`extra=`); never chart data, never secrets."""

from typing import Final

PRACTICE_ID: Final = "practice_id"
SITE_ID: Final = "site_id"
BATCH_ID: Final = "batch_id"
HUB_SEQ: Final = "hub_seq"
ERROR_CODE: Final = "error_code"
OPERATOR_REF: Final = "operator_ref"
ACTION_ID: Final = "action_id"
SNAPSHOT_ID: Final = "snapshot_id"
