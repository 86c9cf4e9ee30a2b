"""Recovery kit: the practice keyring under a passphrase (Argon2id), as a text file.

With every site lost, the kit and its passphrase (plus the hub's copy of the
log) bring back every chart.  Store it offline.  The kit holds every key
epoch, because restoring needs the old ones too.

File format (armored): a BEGIN line, readable `Key: value` lines (practice id,
created, epochs, KDF parameters; no secrets), a blank line, base64 of the
canonical msgpack kit, an END line.  The KDF parameters and practice id are
bound to the ciphertext as associated data.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.utils

from sync_protocol.canonical import canonical_pack, unpack
from sync_protocol.errors import MalformedInput, WrongPassphrase
from sync_protocol.keys import Keyring

BEGIN: Final = "-----BEGIN CHARTSYNC RECOVERY KIT-----"
END: Final = "-----END CHARTSYNC RECOVERY KIT-----"
MIN_PASSPHRASE_CHARS: Final = 13  # MHLW GL 6.0 シQ-54: ≥13 mixed characters
#: Production cost: 256 MiB and several passes (about a second here).
OPSLIMIT: Final = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
MEMLIMIT: Final = nacl.pwhash.argon2id.MEMLIMIT_MODERATE
_MAX_KIT_BYTES: Final = 1 << 20


def _kdf(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(32, passphrase.encode("utf-8"), salt,
                                    opslimit=ops, memlimit=mem)


def create_recovery_kit(
    keyring: Keyring,
    passphrase: str,
    *,
    created: str,
    opslimit: int = OPSLIMIT,
    memlimit: int = MEMLIMIT,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> str:
    """Return the armored kit text.  Raises `ValueError` for a too-short passphrase."""
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise ValueError(f"a recovery passphrase needs at least {MIN_PASSPHRASE_CHARS} "
                         "characters (mix letters, digits and symbols)")
    salt = salt if salt is not None else nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    nonce = nonce if nonce is not None else nacl.utils.random(24)
    params: dict[str, Any] = {"v": 1, "practice": keyring.practice_id.bytes, "kdf": "argon2id",
                              "ops": opslimit, "mem": memlimit, "salt": salt}
    aad = canonical_pack(params)
    box = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        canonical_pack(keyring.to_wire()), aad, nonce, _kdf(passphrase, salt, opslimit, memlimit))
    blob = base64.b64encode(canonical_pack({**params, "nonce": nonce, "box": box})).decode()
    lines = [BEGIN,
             f"Practice: {keyring.practice_id}",
             f"Created: {created}",
             f"Key-Epochs: {', '.join(str(e) for e in sorted(keyring.keys))}",
             f"KDF: argon2id ops={opslimit} mem={memlimit}",
             "Purpose: opens this practice's charts from the hub if every site is lost.",
             "Keep it offline, apart from its passphrase.",
             ""]
    lines += [blob[i:i + 64] for i in range(0, len(blob), 64)]
    lines.append(END)
    return "\n".join(lines) + "\n"


def open_recovery_kit(text: str, passphrase: str) -> Keyring:
    """Return the keyring in the kit; raises `MalformedInput` or `WrongPassphrase`."""
    if len(text) > _MAX_KIT_BYTES:
        raise MalformedInput("file is far larger than a recovery kit")
    lines = [line.strip() for line in text.strip().splitlines()]
    if not lines or lines[0] != BEGIN or lines[-1] != END or "" not in lines:
        raise MalformedInput("not a chartsync recovery kit (missing BEGIN/END lines)",
                             hint="pass the .kit file written by `chartsync edge init`")
    body = "".join(lines[lines.index("") + 1:-1])
    try:
        kit = unpack(base64.b64decode(body, validate=True), what="recovery kit",
                     max_len=_MAX_KIT_BYTES)
        params = {k: kit[k] for k in ("v", "practice", "kdf", "ops", "mem", "salt")}
        nonce, box = bytes(kit["nonce"]), bytes(kit["box"])
        ops, mem, salt = int(params["ops"]), int(params["mem"]), bytes(params["salt"])
    except (binascii.Error, KeyError, TypeError, ValueError) as exc:
        raise MalformedInput(f"damaged recovery kit: {type(exc).__name__}",
                             hint="use another copy of the kit") from exc
    if params["v"] != 1 or params["kdf"] != "argon2id":
        raise MalformedInput(f"recovery kit version {params['v']} is not supported",
                             hint="use the chartsync release that wrote it")
    if not (nacl.pwhash.argon2id.OPSLIMIT_MIN <= ops <= nacl.pwhash.argon2id.OPSLIMIT_MAX
            and nacl.pwhash.argon2id.MEMLIMIT_MIN <= mem <= 4 << 30):
        raise MalformedInput("recovery kit asks for KDF costs outside the allowed range")
    try:
        plain = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            box, canonical_pack(params), nonce, _kdf(passphrase, salt, ops, mem))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError) as exc:
        raise WrongPassphrase("the passphrase does not open this recovery kit",
                              hint="check the passphrase (case, spaces, keyboard layout)") from exc
    return Keyring.from_wire(unpack(plain, what="recovery kit keyring", max_len=_MAX_KIT_BYTES))
