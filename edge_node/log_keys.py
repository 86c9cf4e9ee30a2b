"""Names of the ids that edge log lines carry (`extra=`); never chart data, never secrets.

One module so every log line spells a key the same way and a log search finds
every line about one site, batch or snapshot:

    log.info("snapshot uploaded", extra={SNAPSHOT_ID: str(snapshot_id), HUB_SEQ: hub_seq})
"""

from typing import Final

PRACTICE_ID: Final = "practice_id"
SITE_ID: Final = "site_id"
#: The site that wrote a batch or change (its id).
ORIGIN: Final = "origin"
#: A site's own sequence number of a change (first of a batch).
SEQ: Final = "seq"
HUB_SEQ: Final = "hub_seq"
SNAPSHOT_ID: Final = "snapshot_id"
ERROR_CODE: Final = "error_code"

__all__ = ["ERROR_CODE", "HUB_SEQ", "ORIGIN", "PRACTICE_ID", "SEQ", "SITE_ID", "SNAPSHOT_ID"]
