"""Hub receipts: the hub's signed word that it stored a batch at a position.

A site keeps receipts so it can later prove what the hub accepted and where
(a hub that drops or reorders accepted batches contradicts its own signature).
"""

from __future__ import annotations

from typing import Final
from uuid import UUID

import nacl.exceptions
import nacl.signing

from sync_protocol.canonical import canonical_pack
from sync_protocol.errors import BadSignature
from sync_protocol.models import HubReceipt

_DOMAIN: Final = b"chartsync/receipt/v1\0"


def _message(practice_id: UUID, site_id: UUID, batch_hash: bytes, hub_seq: int) -> bytes:
    return _DOMAIN + canonical_pack([practice_id.bytes, site_id.bytes, batch_hash, hub_seq])


def sign_receipt(hub_key: nacl.signing.SigningKey, *, practice_id: UUID, site_id: UUID,
                 batch_hash: bytes, hub_seq: int) -> HubReceipt:
    """Return the hub's receipt for `batch_hash` stored at `hub_seq`."""
    signature = hub_key.sign(_message(practice_id, site_id, batch_hash, hub_seq)).signature
    return HubReceipt(practice_id=practice_id, site_id=site_id, batch_hash=batch_hash,
                      hub_seq=hub_seq, signature=signature)


def verify_receipt(receipt: HubReceipt, hub_verify_key: bytes) -> None:
    """Raise `BadSignature` unless the hub with `hub_verify_key` signed `receipt`."""
    try:
        nacl.signing.VerifyKey(hub_verify_key).verify(
            _message(receipt.practice_id, receipt.site_id, receipt.batch_hash, receipt.hub_seq),
            receipt.signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise BadSignature(f"receipt for hub seq {receipt.hub_seq} is not signed by this hub",
                           hint="check the hub's public key pinned at enrollment") from exc
