"""Fernet keys that decrypt without importing cryptography (HMAC and AES-CBC by the OpenSSL ssl loaded).

The format is Fernet's, unchanged (https://github.com/fernet/spec): version 0x80, a timestamp, a
16-byte IV, AES-128-CBC ciphertext with PKCS#7 padding, and an HMAC-SHA256 over all of it under
the key's first half. Reading a secret is on `testmail`'s path, where importing
`cryptography.fernet` cost more than the whole decryption: the MAC is computed by `_hashlib` (not
through the hmac and hashlib modules) and the one AES-CBC decryption goes to the libcrypto that
`ssl` has already loaded. Writing (rare)
still uses cryptography's Fernet, so tokens stay readable both ways.
"""

from __future__ import annotations

import base64
import binascii
import os
from _operator import _compare_digest as compare_digest  # what hmac.compare_digest is

TYPE_CHECKING = False  # no typing import on the start-up path
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["FernetKey", "InvalidToken"]

_VERSION = 0x80
_HEAD = 1 + 8 + 16  # version, timestamp, IV
_MAC = 32
_BLOCK = 16


class InvalidToken(Exception):
    """The token is damaged, forged, or was made under another key."""


class FernetKey:
    """A Fernet key (urlsafe base64 of 32 bytes); ValueError when it is not one."""

    __slots__ = ("_encryption", "_key", "_signing")

    def __init__(self, key: bytes) -> None:
        try:
            raw = base64.urlsafe_b64decode(key)
        except (binascii.Error, TypeError, ValueError):
            raise ValueError("a Fernet key must be 32 url-safe base64-encoded bytes") from None
        if len(raw) != 32:
            raise ValueError("a Fernet key must be 32 url-safe base64-encoded bytes")
        self._key = key
        self._signing, self._encryption = raw[:16], raw[16:]

    def __repr__(self) -> str:  # the key is a secret
        return "FernetKey(<redacted>)"

    @staticmethod
    def generate() -> bytes:
        """A new random key, as Fernet.generate_key() makes it."""
        return base64.urlsafe_b64encode(os.urandom(32))

    def encrypt(self, data: bytes) -> bytes:
        from cryptography.fernet import Fernet  # writing is rare; cryptography makes the token

        return Fernet(self._key).encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        """The plaintext; InvalidToken when the token does not verify under this key."""
        try:
            data = base64.urlsafe_b64decode(token)
        except (binascii.Error, TypeError, ValueError):
            raise InvalidToken from None
        body = len(data) - _HEAD - _MAC
        if body < _BLOCK or body % _BLOCK or data[0] != _VERSION:
            raise InvalidToken
        # Authenticate before decrypting anything (constant-time comparison).
        if not compare_digest(_hmac_sha256(self._signing, data[:-_MAC]), data[-_MAC:]):
            raise InvalidToken
        padded = _cbc_decrypt()(self._encryption, data[9:_HEAD], data[_HEAD:-_MAC])
        pad = padded[-1]
        if not 1 <= pad <= _BLOCK or padded[-pad:] != bytes([pad]) * pad:
            raise InvalidToken
        return padded[:-pad]


_decryptor: Callable[[bytes, bytes, bytes], bytes] | None = None


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 by OpenSSL, as hmac.digest() computes it, without importing hmac and hashlib (~1 ms)."""
    try:
        from _hashlib import hmac_digest
    except ImportError:  # a Python built without OpenSSL's hashlib
        import hmac

        return hmac.digest(key, message, "sha256")
    return hmac_digest(key, message, "sha256")


def _cbc_decrypt() -> Callable[[bytes, bytes, bytes], bytes]:
    """AES-128-CBC decryption without padding removal: ssl's libcrypto, else cryptography's."""
    global _decryptor
    if _decryptor is None:
        try:
            _decryptor = _openssl_decryptor()
        except (ImportError, OSError, AttributeError):  # no shared _ssl/libcrypto to borrow
            _decryptor = _cryptography_decrypt
    return _decryptor


def _openssl_decryptor() -> Callable[[bytes, bytes, bytes], bytes]:
    import _ssl
    import ctypes

    # dlsym through _ssl's handle finds the libcrypto that ssl itself is linked against and has
    # already initialised: no second OpenSSL is loaded.
    lib = ctypes.CDLL(_ssl.__file__)
    ptr, c_int, buf = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    lib.EVP_CIPHER_CTX_new.restype = ptr
    lib.EVP_CIPHER_CTX_new.argtypes = []
    lib.EVP_CIPHER_CTX_free.restype = None
    lib.EVP_CIPHER_CTX_free.argtypes = [ptr]
    lib.EVP_aes_128_cbc.restype = ptr
    lib.EVP_aes_128_cbc.argtypes = []
    lib.EVP_DecryptInit_ex.restype = c_int
    lib.EVP_DecryptInit_ex.argtypes = [ptr, ptr, ptr, buf, buf]
    lib.EVP_CIPHER_CTX_set_padding.restype = c_int
    lib.EVP_CIPHER_CTX_set_padding.argtypes = [ptr, c_int]
    lib.EVP_DecryptUpdate.restype = c_int
    lib.EVP_DecryptUpdate.argtypes = [ptr, ptr, ctypes.POINTER(c_int), buf, c_int]
    lib.EVP_DecryptFinal_ex.restype = c_int
    lib.EVP_DecryptFinal_ex.argtypes = [ptr, ptr, ctypes.POINTER(c_int)]
    cipher = lib.EVP_aes_128_cbc()
    if not cipher:
        raise OSError("libcrypto has no AES-128-CBC")

    def decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
        if len(key) != 16 or len(iv) != _BLOCK or len(ciphertext) % _BLOCK or len(ciphertext) > 1 << 30:
            raise InvalidToken
        ctx = lib.EVP_CIPHER_CTX_new()
        if not ctx:
            raise MemoryError("EVP_CIPHER_CTX_new failed")
        try:
            out = ctypes.create_string_buffer(len(ciphertext) + _BLOCK)  # OpenSSL's documented bound
            start = ctypes.addressof(out)
            n, tail = c_int(0), c_int(0)
            ok = (
                lib.EVP_DecryptInit_ex(ctx, cipher, None, key, iv) == 1
                and lib.EVP_CIPHER_CTX_set_padding(ctx, 0) == 1  # whole blocks; PKCS#7 checked by the caller
                and lib.EVP_DecryptUpdate(ctx, start, ctypes.byref(n), ciphertext, len(ciphertext)) == 1
                and lib.EVP_DecryptFinal_ex(ctx, start + n.value, ctypes.byref(tail)) == 1
            )
            if not ok or n.value + tail.value != len(ciphertext):
                raise InvalidToken
            return out.raw[: len(ciphertext)]
        finally:
            lib.EVP_CIPHER_CTX_free(ctx)

    return decrypt


def _cryptography_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()
