"""Recovery kit: the kit's seed and the practice keyring, under a passphrase or shares.

With every site lost, the kit and its passphrase (plus the hub's copy of the
log) bring back every chart.  Store it offline.  The kit holds the key epochs
known when it was written and the kit seed (`sync_protocol.kit_keys`): every
later epoch is sealed to the kit's public key and kept at the hub, so the kit
opens every epoch however often the key rotates.  A kit opens either with a
passphrase (Argon2id) or with any k of n custodians' SLIP-39 shares of a random
kit key (shamir-mnemonic, the SLIP-39 reference implementation), so losing one
custodian loses nothing and no single custodian can open it.

File format (armored): a BEGIN line, readable `Key: value` lines (practice id,
created, epochs, KDF parameters; no secrets), a blank line, base64 of the
canonical msgpack kit, an END line.  The KDF parameters and practice id are
bound to the ciphertext as associated data.  Format 2 seals `{seed, keyring}`;
format 1 (kits written before kits had a seed) sealed the keyring alone and
still opens, with no kit keys.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.utils
import shamir_mnemonic

from sync_protocol.canonical import canonical_pack, unpack
from sync_protocol.errors import BadRecoveryShares, MalformedInput, ProtocolError, WrongPassphrase
from sync_protocol.keys import Keyring
from sync_protocol.kit_keys import KitKeyPair

BEGIN: Final = "-----BEGIN CHARTSYNC RECOVERY KIT-----"
END: Final = "-----END CHARTSYNC RECOVERY KIT-----"
MIN_PASSPHRASE_CHARS: Final = 13  # MHLW GL 6.0 シQ-54: ≥13 mixed characters
#: Production cost: 256 MiB and several passes (about a second here).
OPSLIMIT: Final = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
MEMLIMIT: Final = nacl.pwhash.argon2id.MEMLIMIT_MODERATE
_MAX_KIT_BYTES: Final = 1 << 20
_FORMAT: Final = 2


@dataclass(frozen=True, slots=True)
class OpenedKit:
    """What an opened kit holds: the epochs written into it and its key pair."""

    keyring: Keyring
    #: None for a format-1 kit, which predates kit keys.
    keys: KitKeyPair | None

    @property
    def practice_id(self) -> UUID:
        return self.keyring.practice_id


def _kdf(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(32, passphrase.encode("utf-8"), salt,
                                    opslimit=ops, memlimit=mem)


def create_recovery_kit(
    keyring: Keyring,
    passphrase: str,
    *,
    kit: KitKeyPair,
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
    params: dict[str, Any] = {"v": _FORMAT, "practice": keyring.practice_id.bytes,
                              "kdf": "argon2id", "ops": opslimit, "mem": memlimit, "salt": salt}
    return _seal_kit(keyring, kit, params, _kdf(passphrase, salt, opslimit, memlimit),
                     created=created, nonce=nonce,
                     how=f"KDF: argon2id ops={opslimit} mem={memlimit}",
                     opens_with="its passphrase")


def create_shared_recovery_kit(
    keyring: Keyring,
    *,
    kit: KitKeyPair,
    threshold: int,
    shares: int,
    created: str,
    kit_key: bytes | None = None,
) -> tuple[str, list[str]]:
    """Return the armored kit and `shares` SLIP-39 word lists, any `threshold` of which open it.

    Give each custodian the kit file and one share (kept apart).  Fewer than
    `threshold` shares reveal nothing about the key.  Raises `ValueError` for
    a threshold outside 1..shares or more than 16 shares.
    """
    if not 1 <= threshold <= shares <= 16:
        raise ValueError("need 1 <= threshold <= shares <= 16 (for example 2 of 3)")
    kit_key = kit_key if kit_key is not None else nacl.utils.random(32)
    params: dict[str, Any] = {"v": _FORMAT, "practice": keyring.practice_id.bytes,
                              "kdf": "slip39", "k": threshold, "n": shares}
    words = shamir_mnemonic.generate_mnemonics(1, [(threshold, shares)], kit_key)[0]
    text = _seal_kit(keyring, kit, params, kit_key, created=created, nonce=None,
                     how=f"Shares: any {threshold} of {shares} (SLIP-39 word lists)",
                     opens_with=f"any {threshold} of the {shares} custodians' shares")
    return text, list(words)


def _seal_kit(keyring: Keyring, kit: KitKeyPair, params: dict[str, Any], key: bytes, *,
              created: str, nonce: bytes | None, how: str, opens_with: str) -> str:
    nonce = nonce if nonce is not None else nacl.utils.random(24)
    plain = canonical_pack({"seed": kit.seed, "keyring": keyring.to_wire()})
    box = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plain, canonical_pack(params), nonce, key)
    blob = base64.b64encode(canonical_pack({**params, "nonce": nonce, "box": box})).decode()
    lines = [BEGIN,
             f"Practice: {keyring.practice_id}",
             f"Created: {created}",
             f"Key-Epochs: {', '.join(str(e) for e in sorted(keyring.keys))} (later epochs "
             "are sealed to this kit at the hub)",
             f"Kit-Fingerprint: {kit.public().fingerprint}",
             how,
             "Purpose: opens this practice's charts from the hub if every site is lost.",
             f"Keep it offline; it opens with {opens_with}, kept apart from this file.",
             ""]
    lines += [blob[i:i + 64] for i in range(0, len(blob), 64)]
    lines.append(END)
    return "\n".join(lines) + "\n"


def _parse_kit(text: str) -> tuple[dict[str, Any], bytes, bytes]:
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
        names = ("v", "practice", "kdf") + (
            ("ops", "mem", "salt") if kit.get("kdf") == "argon2id" else ("k", "n"))
        params = {k: kit[k] for k in names}
        return params, bytes(kit["nonce"]), bytes(kit["box"])
    except (binascii.Error, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedInput(f"damaged recovery kit: {type(exc).__name__}",
                             hint="use another copy of the kit") from exc


def _open_kit(params: dict[str, Any], nonce: bytes, box: bytes, key: bytes,
              wrong: ProtocolError) -> OpenedKit:
    try:
        plain = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            box, canonical_pack(params), nonce, key)
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError) as exc:
        raise wrong from exc
    content = unpack(plain, what="recovery kit content", max_len=_MAX_KIT_BYTES)
    if params["v"] == 1:
        return OpenedKit(Keyring.from_wire(content), None)
    try:
        return OpenedKit(Keyring.from_wire(content["keyring"]),
                         KitKeyPair.from_seed(bytes(content["seed"])))
    except (KeyError, TypeError) as exc:
        raise MalformedInput(f"damaged recovery kit content: {type(exc).__name__}") from exc


def open_recovery_kit(text: str, passphrase: str) -> OpenedKit:
    """Open a passphrase kit; raises `MalformedInput` or `WrongPassphrase`."""
    params, nonce, box = _parse_kit(text)
    if params["v"] not in (1, _FORMAT) or params["kdf"] != "argon2id":
        raise MalformedInput(f"this recovery kit ({params['kdf']}) does not open with a "
                             "passphrase", hint="open it with the custodians' shares")
    try:
        ops, mem, salt = int(params["ops"]), int(params["mem"]), bytes(params["salt"])
    except (TypeError, ValueError) as exc:
        raise MalformedInput("damaged recovery kit: KDF parameters") from exc
    if not (nacl.pwhash.argon2id.OPSLIMIT_MIN <= ops <= nacl.pwhash.argon2id.OPSLIMIT_MAX
            and nacl.pwhash.argon2id.MEMLIMIT_MIN <= mem <= 4 << 30):
        raise MalformedInput("recovery kit asks for KDF costs outside the allowed range")
    return _open_kit(params, nonce, box, _kdf(passphrase, salt, ops, mem), WrongPassphrase(
        "the passphrase does not open this recovery kit",
        hint="check the passphrase (case, spaces, keyboard layout)"))


def open_shared_recovery_kit(text: str, shares: list[str]) -> OpenedKit:
    """Open a shared kit with at least its threshold of shares.

    Raises `MalformedInput` (damaged kit), `BadRecoveryShares` (too few, mixed or
    mistyped shares).
    """
    params, nonce, box = _parse_kit(text)
    if params["v"] not in (1, _FORMAT) or params["kdf"] != "slip39":
        raise MalformedInput("this recovery kit opens with a passphrase, not shares")
    try:
        key = shamir_mnemonic.combine_mnemonics([" ".join(s.split()) for s in shares])
    except shamir_mnemonic.MnemonicError as exc:
        raise BadRecoveryShares(
            f"the shares do not combine: {exc}",
            hint=f"this kit needs {params['k']} of its {params['n']} shares; check each "
            "word list for typos and that all come from this kit") from exc
    return _open_kit(params, nonce, box, key, BadRecoveryShares(
        "the shares combine, but not to this kit's key",
        hint="the shares belong to another recovery kit"))
