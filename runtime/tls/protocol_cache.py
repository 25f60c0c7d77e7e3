"""The supported-protocols check kept in the home, keyed by OpenSSL and its configuration (best effort)."""

from __future__ import annotations

import contextlib
import os
import ssl
import sys
from pathlib import Path

from jcsh.runtime.tls.protocols import NEWEST_FIRST, ProtocolReport, supported_protocols

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

__all__ = ["cached_protocols", "read_cached_protocols", "cache_path", "remember", "CACHE_NAME"]

CACHE_NAME = "tls-protocols.json"
_FORMAT = 1
_MAX_BYTES = 64 << 10  # a real cache file is ~1 KB; anything far bigger is not ours


def cache_path(home: Path) -> Path:
    return home / "cache" / CACHE_NAME


def _openssl_conf() -> list[Any]:
    """Which OpenSSL configuration applies and its stamp: editing it can change what is supported."""
    path = os.environ.get("OPENSSL_CONF")
    if not path:
        capath = ssl.get_default_verify_paths().openssl_capath  # OPENSSLDIR/certs
        path = str(Path(capath).parent / "openssl.cnf")
    try:
        st = os.stat(path)
    except OSError:
        return [path, None, None]
    return [path, st.st_mtime_ns, st.st_size]


def _key() -> dict[str, Any]:
    """What the answer depends on: this OpenSSL, this Python's ssl build, and OpenSSL's configuration."""
    return {
        "openssl": ssl.OPENSSL_VERSION,
        "openssl_info": list(ssl.OPENSSL_VERSION_INFO),
        "python": sys.version,
        "openssl_conf": _openssl_conf(),
    }


def _names(value: object) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) and v in NEWEST_FIRST for v in value):
        return list(value)
    return None


def _load(path: Path, key: dict[str, Any]) -> ProtocolReport | None:
    """The cached report when the file is ours, whole, and made under the same key; else None."""
    import json

    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_BYTES + 1)
        if len(raw) > _MAX_BYTES:
            return None
        doc = json.loads(raw)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT or doc.get("key") != key:
        return None
    names, defaults, reasons = _names(doc.get("protocols")), _names(doc.get("default_enabled")), doc.get("reasons")
    if names is None or defaults is None or not set(defaults) <= set(names) or not isinstance(reasons, dict):
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in reasons.items()):
        return None
    if set(names) | set(reasons) != set(NEWEST_FIRST) or set(names) & set(reasons):
        return None
    return ProtocolReport(names, defaults, ssl.OPENSSL_VERSION, dict(reasons))


def remember(home: Path, report: ProtocolReport) -> None:
    """Write the report for the next process; a read-only or full home just keeps no cache."""
    import json

    path = cache_path(home)
    doc = {
        "format": _FORMAT,
        "key": _key(),
        "protocols": report.names,
        "default_enabled": report.default_enabled,
        "reasons": report.reasons,
    }
    tmp = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        import tempfile  # only when the cache is written (once per OpenSSL version)

        fd, tmp = tempfile.mkstemp(prefix=".tls-protocols-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(tmp, path)  # readers see the old file or the new one, never half of one
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def read_cached_protocols(home: Path | None) -> ProtocolReport | None:
    """The cached report when the home holds a current one (a file read: no thread needed), else None."""
    return _load(cache_path(home), _key()) if home is not None else None


def cached_protocols(home: Path | None) -> ProtocolReport:
    """supported_protocols(), read from the home when this OpenSSL already answered there.

    A missing, stale or damaged cache file is replaced by a fresh check; no cache problem ever
    makes the caller fail.
    """
    if home is None:
        return supported_protocols()
    report = _load(cache_path(home), _key())
    if report is not None:
        return report
    report = supported_protocols()
    remember(home, report)
    return report
