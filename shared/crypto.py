"""Sealing personal data with AES-GCM under named keys, so that keys can rotate."""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.events import Sealed
from shared.settings import DEV_SECRET_PREFIX

KEY_BYTES = 32
NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed value that cannot be opened: unknown key id, bad encoding, tampering."""


@dataclass(frozen=True)
class KeyRing:
    """The keys a process may open values with, and the one it seals new values with."""

    keys: dict[str, bytes]
    active: str

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise ValueError(f"the active key id {self.active!r} is not in the key ring")
        for key_id, key in self.keys.items():
            if len(key) != KEY_BYTES:
                raise ValueError(f"key {key_id!r} must be {KEY_BYTES} bytes")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SealError("the sealed value is not valid base64") from None


def seal(keyring: KeyRing, plaintext: bytes, *, associated_data: bytes) -> Sealed:
    """Encrypt bytes with the active key; the associated data binds it to its owner."""
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(keyring.keys[keyring.active]).encrypt(
        nonce, plaintext, associated_data
    )
    return Sealed(key_id=keyring.active, nonce=_b64(nonce), ciphertext=_b64(ciphertext))


def open_sealed(keyring: KeyRing, sealed: Sealed, *, associated_data: bytes) -> bytes:
    """Decrypt a sealed value; SealError for an unknown key id or a tampered blob."""
    key = keyring.keys.get(sealed.key_id)
    if key is None:
        raise SealError(f"unknown key id {sealed.key_id!r}")
    nonce = _unb64(sealed.nonce)
    if len(nonce) != NONCE_BYTES:
        raise SealError("the nonce has the wrong length")
    try:
        return AESGCM(key).decrypt(nonce, _unb64(sealed.ciphertext), associated_data)
    except InvalidTag:
        raise SealError(
            "the sealed value was tampered with or belongs to someone else"
        ) from None


def keyring_from_settings(keys_json: str, active: str) -> KeyRing:
    """Build a key ring from a JSON object of key id -> base64 key.

    The development default carries DEV_SECRET_PREFIX in front of its JSON so that
    settings outside development refuse it; the prefix is dropped here.
    """
    text = keys_json.removeprefix(DEV_SECRET_PREFIX)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("contacts keys must be a JSON object") from None
    if not isinstance(raw, dict) or not raw:
        raise ValueError("contacts keys must be a non-empty JSON object")
    keys = {}
    for key_id, value in raw.items():
        try:
            keys[str(key_id)] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"key {key_id!r} is not valid base64") from None
    return KeyRing(keys=keys, active=active)


def seal_json(keyring: KeyRing, value: object, *, owner: str) -> Sealed:
    """Seal a JSON-serialisable value for one owner (a member id)."""
    return seal(keyring, json.dumps(value).encode(), associated_data=owner.encode())


def open_json(keyring: KeyRing, sealed: Sealed, *, owner: str) -> object:
    """Open a value sealed with seal_json for the same owner."""
    return json.loads(open_sealed(keyring, sealed, associated_data=owner.encode()))
