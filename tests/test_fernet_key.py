"""FernetKey reads what cryptography's Fernet writes (and the reverse), and refuses every bad token."""

from __future__ import annotations

import base64
import hmac
import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken as FernetInvalidToken
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from jcsh.runtime import fernet_key
from jcsh.runtime.fernet_key import FernetKey, InvalidToken

# ssl's libcrypto (the fast path) and cryptography's AES (the fallback) must agree on everything
DECRYPTORS = {"openssl": fernet_key._openssl_decryptor, "cryptography": lambda: fernet_key._cryptography_decrypt}


@pytest.fixture(params=list(DECRYPTORS))
def key(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.setattr(fernet_key, "_decryptor", DECRYPTORS[request.param]())
    return Fernet.generate_key()


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 31, 32, 1000])
def test_reads_tokens_that_fernet_wrote(key: bytes, size: int) -> None:
    plain = os.urandom(size)
    assert FernetKey(key).decrypt(Fernet(key).encrypt(plain)) == plain


def test_fernet_reads_what_it_writes_and_generated_keys_are_fernet_keys() -> None:
    new = FernetKey.generate()
    Fernet(new)  # accepted as a key
    token = FernetKey(new).encrypt("pässword".encode())
    assert Fernet(new).decrypt(token) == "pässword".encode()
    assert FernetKey(new).decrypt(token) == "pässword".encode()
    assert FernetKey.generate() != new


def _forge(key: bytes, padded: bytes, version: int = 0x80) -> bytes:
    """A token with a valid MAC around chosen (possibly badly padded) plaintext."""
    raw = base64.urlsafe_b64decode(key)
    iv = os.urandom(16)
    enc = Cipher(algorithms.AES(raw[16:]), modes.CBC(iv)).encryptor()
    body = bytes([version]) + (0).to_bytes(8, "big") + iv + enc.update(padded) + enc.finalize()
    return base64.urlsafe_b64encode(body + hmac.digest(raw[:16], body, "sha256"))


def _flip(token: bytes, at: int) -> bytes:
    data = bytearray(base64.urlsafe_b64decode(token))
    data[at] ^= 1
    return base64.urlsafe_b64encode(bytes(data))


@pytest.mark.parametrize(
    "bad",
    [
        "another key",
        "mac flipped",
        "ciphertext flipped",
        "iv flipped",
        "truncated",
        "not base64",
        "empty",
        "wrong version",
        "padding zero",
        "padding too long",
        "padding inconsistent",
        "no ciphertext",
    ],
)
def test_refuses_every_bad_token(key: bytes, bad: str) -> None:
    good = Fernet(key).encrypt(b"the secret")
    token = {
        "another key": lambda: Fernet(Fernet.generate_key()).encrypt(b"the secret"),
        "mac flipped": lambda: _flip(good, -1),
        "ciphertext flipped": lambda: _flip(good, 30),
        "iv flipped": lambda: _flip(good, 10),
        "truncated": lambda: good[:-8],
        "not base64": lambda: b"\xff\x00 not a token",
        "empty": lambda: b"",
        "wrong version": lambda: _forge(key, b"x" * 15 + b"\x01", version=0x81),
        "padding zero": lambda: _forge(key, b"x" * 15 + b"\x00"),
        "padding too long": lambda: _forge(key, b"x" * 15 + b"\x11"),
        "padding inconsistent": lambda: _forge(key, b"x" * 13 + b"\x02\x03\x03"),
        "no ciphertext": lambda: _forge(key, b""),
    }[bad]()
    with pytest.raises(InvalidToken):
        FernetKey(key).decrypt(token)
    with pytest.raises(FernetInvalidToken):  # cryptography refuses the same tokens
        Fernet(key).decrypt(token)


@pytest.mark.parametrize("key", [b"", b"short", base64.urlsafe_b64encode(b"x" * 31), b"!" * 44])
def test_a_bad_key_is_a_value_error_as_with_fernet(key: bytes) -> None:
    with pytest.raises(ValueError):
        FernetKey(key)
    with pytest.raises(ValueError):
        Fernet(key)


def test_the_key_never_shows_in_its_repr() -> None:
    key = FernetKey.generate()
    assert key.decode() not in repr(FernetKey(key)) and "redacted" in repr(FernetKey(key))


def test_reading_a_secret_does_not_import_cryptography(tmp_path: object) -> None:
    """The point of the module: `testmail`'s AUTH path decrypts without loading cryptography."""
    key = Fernet.generate_key()
    token = Fernet(key).encrypt(b"s3cret")
    code = (
        "import sys, ssl\n"
        "from jcsh.runtime.fernet_key import FernetKey\n"
        f"assert FernetKey({key!r}).decrypt({token!r}) == b's3cret'\n"
        "print(sorted(m for m in sys.modules if m.startswith(('cryptography', 'hmac', 'hashlib'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.strip() == "[]"


def test_the_mac_with_and_without_openssl_hashlib_is_hmacs(monkeypatch: pytest.MonkeyPatch) -> None:
    key, message = os.urandom(16), os.urandom(100)
    expected = hmac.digest(key, message, "sha256")
    assert fernet_key._hmac_sha256(key, message) == expected
    monkeypatch.setitem(sys.modules, "_hashlib", None)  # a Python built without it: the hmac module's
    assert fernet_key._hmac_sha256(key, message) == expected
