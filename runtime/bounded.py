"""Reading files and streams in bounded chunks: each kind of input has a size limit and the bytes it
cannot hold, and reading stops at whichever comes first (`/dev/zero` stops at its first byte)."""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import IO

from jcsh.runtime.errors import UsageError
from jcsh.runtime.records import NamedTuple

__all__ = [
    "Bounds",
    "SCRIPT",
    "IMPORT",
    "HTML",
    "CERTIFICATE",
    "ATTACHMENT",
    "PASSWORD",
    "read_text",
    "read_bytes",
    "size_text",
]

_CHUNK = 1 << 20
_MIB = 1 << 20


class Bounds(NamedTuple):
    """What one kind of input may be: at most `limit` bytes, none of the characters in `forbid`."""

    limit: int
    kind: str  # "a script": how messages name the limit
    forbid: str = ""  # a regular-expression character class, e.g. "[\x00]"
    forbid_why: str = ""


SCRIPT = Bounds(8 * _MIB, "a script", "[\x00]", "a NUL byte, which Python source cannot hold")
IMPORT = Bounds(
    256 * _MIB,
    "an import document",
    "[\x00-\x08\x0b\x0c\x0e-\x1f]",
    "a control character, which JSON text cannot hold",
)
HTML = Bounds(4 * _MIB, "an HTML body", "[\x00]", "a NUL byte")
CERTIFICATE = Bounds(1 * _MIB, "a certificate file")
ATTACHMENT = Bounds(25 * _MIB, "an attachment")
PASSWORD = Bounds(64 * 1024, "a password", "[\x00]", "a NUL byte")


def size_text(size: int) -> str:
    """8 MiB, 64 KiB, 100 bytes."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", _MIB), ("KiB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def _over(name: str, bounds: Bounds) -> UsageError:
    return UsageError(f"{name} is larger than {size_text(bounds.limit)}, the limit for {bounds.kind}")


def read_bytes(source: IO[bytes] | Path, name: str, bounds: Bounds) -> bytes:
    """All of a binary stream or file, up to the limit; UsageError naming the limit beyond it."""
    if isinstance(source, Path):
        with open(source, "rb") as f:
            return read_bytes(f, name, bounds)
    chunks: list[bytes] = []
    size = 0
    while chunk := source.read(min(_CHUNK, bounds.limit + 1 - size)):
        size += len(chunk)
        if size > bounds.limit:
            raise _over(name, bounds)
        chunks.append(chunk)
    return b"".join(chunks)


def read_text(source: IO[str] | IO[bytes] | Path, name: str, bounds: Bounds) -> str:
    """All of a UTF-8 stream or file (a BOM dropped), in chunks; UsageError at the first byte that
    cannot be there (invalid UTF-8, a forbidden character) or beyond the limit, whichever comes first."""
    if isinstance(source, Path):
        with open(source, "rb") as f:
            return read_text(f, name, bounds)
    raw: IO[str] | IO[bytes] = getattr(source, "buffer", source)  # a text stream's bytes, when it has them
    forbid = re.compile(bounds.forbid) if bounds.forbid else None
    # The forbidden characters are ASCII controls, which UTF-8 never uses inside a longer character:
    # looking at the bytes finds exactly them. A table that maps each forbidden byte to 0 and then
    # memchr is ~10x faster than a regular expression over the text (an import is up to 256 MiB).
    marks = bytes(0 if forbid and forbid.match(chr(b)) else 1 for b in range(256)) if forbid else None
    decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
    pieces: list[str] = []
    size = 0  # bytes read so far
    binary = True
    while chunk := raw.read(min(_CHUNK, bounds.limit + 1 - size)):
        start = size  # the byte offset of the chunk
        if isinstance(chunk, str):  # a text stream with no bytes underneath (a StringIO)
            binary = False
            text = chunk
            size += len(chunk.encode("utf-8", "surrogatepass"))
            bad = forbid.search(text) if forbid else None
            if bad:
                at = start + len(text[: bad.start()].encode("utf-8", "surrogatepass"))
                raise _forbidden(name, bounds, at, ord(bad.group()))
        else:
            found = chunk.translate(marks).find(0) if marks else -1
            held = len(decoder.getstate()[0])  # bytes of a character split across chunks
            try:
                text = decoder.decode(chunk[:found] if found >= 0 else chunk)
            except UnicodeDecodeError as e:
                at = start - held + e.start
                raise UsageError(
                    f"{name} is not UTF-8 text: byte {at} (0x{e.object[e.start]:02x}) is invalid"
                ) from None
            if found >= 0:
                raise _forbidden(name, bounds, start + found, chunk[found])
            size += len(chunk)
        if size > bounds.limit:
            raise _over(name, bounds)
        pieces.append(text)
    if binary:
        try:
            pieces.append(decoder.decode(b"", final=True))
        except UnicodeDecodeError:
            raise UsageError(f"{name} is not UTF-8 text: it ends inside a character") from None
    return "".join(pieces)


def _forbidden(name: str, bounds: Bounds, at: int, code: int) -> UsageError:
    return UsageError(f"{name} is not {bounds.kind}: byte {at} is 0x{code:02x}, {bounds.forbid_why}")
