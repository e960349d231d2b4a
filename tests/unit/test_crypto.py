"""Sealing contact details: round trip, owner binding, tampering, rotation, settings."""

from __future__ import annotations

import base64

import pytest

from shared import crypto
from shared.events import Sealed
from shared.settings import DEV_SECRET_PREFIX, ServiceSettings

KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))


def ring(active: str = "a") -> crypto.KeyRing:
    return crypto.KeyRing(keys={"a": KEY_A, "b": KEY_B}, active=active)


def test_a_sealed_value_opens_for_its_owner_only() -> None:
    sealed = crypto.seal(ring(), b'{"sms": "+32470000000"}', associated_data=b"m-1")
    assert sealed.key_id == "a"
    assert b"+32470" not in base64.b64decode(sealed.ciphertext)
    assert crypto.open_sealed(ring(), sealed, associated_data=b"m-1") == (
        b'{"sms": "+32470000000"}'
    )
    with pytest.raises(crypto.SealError, match="someone else"):
        crypto.open_sealed(ring(), sealed, associated_data=b"m-2")


def test_each_seal_uses_a_fresh_nonce() -> None:
    first = crypto.seal(ring(), b"x", associated_data=b"m")
    second = crypto.seal(ring(), b"x", associated_data=b"m")
    assert first.nonce != second.nonce and first.ciphertext != second.ciphertext


def test_a_tampered_blob_is_refused() -> None:
    sealed = crypto.seal(ring(), b"secret", associated_data=b"m")
    raw = bytearray(base64.b64decode(sealed.ciphertext))
    raw[0] ^= 1
    tampered = sealed.model_copy(update={"ciphertext": base64.b64encode(raw).decode()})
    with pytest.raises(crypto.SealError, match="tampered"):
        crypto.open_sealed(ring(), tampered, associated_data=b"m")
    with pytest.raises(crypto.SealError, match="base64"):
        crypto.open_sealed(
            ring(), sealed.model_copy(update={"nonce": "!!"}), associated_data=b"m"
        )


def test_unknown_key_id_is_named_and_old_keys_still_open() -> None:
    old = crypto.seal(ring("a"), b"v", associated_data=b"m")
    rotated = ring("b")
    assert crypto.open_sealed(rotated, old, associated_data=b"m") == b"v"
    stranger = Sealed(key_id="zz", nonce=old.nonce, ciphertext=old.ciphertext)
    with pytest.raises(crypto.SealError, match="unknown key id 'zz'"):
        crypto.open_sealed(rotated, stranger, associated_data=b"m")


def test_json_helpers_bind_the_owner() -> None:
    sealed = crypto.seal_json(ring(), {"email": "a@example.org"}, owner="m-9")
    assert crypto.open_json(ring(), sealed, owner="m-9") == {"email": "a@example.org"}


def test_keyring_from_settings_reads_the_development_default() -> None:
    settings = ServiceSettings()
    assert settings.contacts_keys.startswith(DEV_SECRET_PREFIX)
    keyring = crypto.keyring_from_settings(
        settings.contacts_keys, settings.contacts_active_key_id
    )
    assert keyring.active == "dev-1" and len(keyring.keys["dev-1"]) == 32


def test_keyring_from_settings_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        crypto.keyring_from_settings("[1]", "a")
    with pytest.raises(ValueError, match="base64"):
        crypto.keyring_from_settings('{"a": "%%"}', "a")
    with pytest.raises(ValueError, match="32 bytes"):
        crypto.keyring_from_settings('{"a": "AAAA"}', "a")
    with pytest.raises(ValueError, match="active key id"):
        crypto.keyring_from_settings('{"a": "' + base64.b64encode(KEY_A).decode() + '"}', "b")


def test_production_refuses_the_development_contacts_keys() -> None:
    key = base64.b64encode(KEY_A).decode()
    with pytest.raises(ValueError, match="jwt_secret|contacts_keys"):
        ServiceSettings(environment="production", jwt_secret="real-secret")
    settings = ServiceSettings(
        environment="production", jwt_secret="real", contacts_keys='{"k": "' + key + '"}',
        contacts_active_key_id="k",
    )
    assert "contacts_keys" in settings.secret_values()
