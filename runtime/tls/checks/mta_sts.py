"""MTA-STS (RFC 8461) and TLS-RPT (RFC 8460): the `_mta-sts` TXT record, the HTTPS policy, `_smtp._tls`."""

from __future__ import annotations

import os
import re
import ssl
import threading
from collections.abc import Sequence
from enum import StrEnum

from jcsh.runtime.records import NamedTuple
from jcsh.runtime.resolver import DEFAULT_LIFETIME, Lookup, resolve_host
from jcsh.runtime.tls.checks.render import shown, table

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "StsMode",
    "StsStatus",
    "StsPolicy",
    "MtaStsResult",
    "TlsRptResult",
    "check_mta_sts",
    "check_tls_rpt",
    "fetch_policy",
    "parse_policy",
    "mx_matches",
    "render_mta_sts",
    "POLICY_PORT_ENV",
    "MAX_POLICY_BYTES",
]

# Tests serve policies on a loopback port of their choosing; real policies are on 443 (RFC 8461 3.3).
POLICY_PORT_ENV = "JCSH_MTA_STS_PORT"
MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 3.3: senders may refuse larger policies
_MAX_AGE_LIMIT = 31557600  # RFC 8461 3.2: at most one year
_ID = re.compile(r"[A-Za-z0-9]{1,32}")


class StsMode(StrEnum):
    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


class StsStatus(StrEnum):
    ABSENT = "absent"  # no `_mta-sts` record: the domain does not use MTA-STS
    VALID = "valid"  # record and policy found and parsed
    ERROR = "error"  # record, policy or its fetch is broken: `error` says how


class StsPolicy(NamedTuple):
    mode: StsMode
    max_age: int
    mx: tuple[str, ...]


class MtaStsResult(NamedTuple):
    """What a sender learns about DOMAIN's MTA-STS policy."""

    domain: str
    status: StsStatus
    record: str | None = None
    id: str | None = None
    policy: StsPolicy | None = None
    error: str | None = None

    def covers(self, host: str) -> bool | None:
        """Whether an MX host matches the policy's `mx` patterns (None when there is no policy)."""
        if self.policy is None:
            return None
        return any(mx_matches(p, host) for p in self.policy.mx)

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "id": self.id,
            "mode": self.policy.mode.value if self.policy else None,
            "max_age": self.policy.max_age if self.policy else None,
            "mx": list(self.policy.mx) if self.policy else [],
            "status": self.status.value,
            "error": self.error,
        }


class TlsRptResult(NamedTuple):
    record: str | None
    rua: tuple[str, ...] = ()
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"record": self.record, "rua": list(self.rua), "error": self.error}


class PolicyError(Exception):
    """The policy could not be fetched or parsed; the message says why."""


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 4.1: exact (case-insensitive), or `*.` standing for exactly one left-most label."""
    pattern, host = pattern.strip().rstrip(".").lower(), host.strip().rstrip(".").lower()
    if pattern.startswith("*."):
        label, _, rest = host.partition(".")
        return bool(label) and rest == pattern[2:]
    return pattern == host


def _txt(lookup: Lookup, name: str) -> tuple[list[str], str | None]:
    """The TXT strings at name, each record's strings joined; an error message for failures other than none."""
    records, kind, message = lookup.query(name, "TXT")
    if kind in ("nxdomain", "no-answer"):
        return [], None
    if kind:
        return [], message
    return [b"".join(r.strings).decode("utf-8", "replace") for r in records], None


def _fields(record: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            out.setdefault(key.strip(), value.strip())
    return out


def check_mta_sts(
    domain: str,
    context: ssl.SSLContext,
    *,
    lifetime: float = DEFAULT_LIFETIME,
    timeout: float = 10.0,
    port: int | None = None,
) -> MtaStsResult:
    """The `_mta-sts` record of domain and, when there is one, its policy fetched with context.

    context verifies `mta-sts.DOMAIN` as mail servers are verified (the caller's trust). Never raises
    for DNS, network or policy trouble: those are the result's `error`.
    """
    domain = domain.strip().rstrip(".").lower()
    texts, failure = _txt(Lookup(lifetime), f"_mta-sts.{domain}")
    if failure:
        return MtaStsResult(domain, StsStatus.ERROR, error=failure)
    records = [t for t in texts if t.startswith("v=STSv1")]
    if not records:
        return MtaStsResult(domain, StsStatus.ABSENT)
    if len(records) > 1:  # RFC 8461 3.1: more than one record means no policy
        return MtaStsResult(
            domain, StsStatus.ERROR, records[0], error=f"{len(records)} STSv1 records at _mta-sts.{domain}"
        )
    record = records[0]
    policy_id = _fields(record).get("id")
    if policy_id is None or not _ID.fullmatch(policy_id):
        return MtaStsResult(
            domain,
            StsStatus.ERROR,
            record,
            policy_id,
            error="the record's id is missing or not 1-32 letters and digits",
        )
    try:
        text = fetch_policy(domain, context, timeout=timeout, lifetime=lifetime, port=port)
        policy = parse_policy(text)
    except PolicyError as e:
        return MtaStsResult(domain, StsStatus.ERROR, record, policy_id, error=str(e))
    return MtaStsResult(domain, StsStatus.VALID, record, policy_id, policy)


def check_tls_rpt(domain: str, *, lifetime: float = DEFAULT_LIFETIME) -> TlsRptResult:
    """The `_smtp._tls` TXT record of domain (RFC 8460) and its reporting addresses."""
    domain = domain.strip().rstrip(".").lower()
    texts, failure = _txt(Lookup(lifetime), f"_smtp._tls.{domain}")
    if failure:
        return TlsRptResult(None, error=failure)
    records = [t for t in texts if t.startswith("v=TLSRPTv1")]
    if not records:
        return TlsRptResult(None)
    if len(records) > 1:  # RFC 8460 3: more than one record means no reporting
        return TlsRptResult(records[0], error=f"{len(records)} TLSRPTv1 records at _smtp._tls.{domain}")
    rua = tuple(u.strip() for u in _fields(records[0]).get("rua", "").split(",") if u.strip())
    if not rua:
        return TlsRptResult(records[0], error="the record has no rua= (where reports go)")
    bad = [u for u in rua if not u.lower().startswith(("mailto:", "https:"))]
    return TlsRptResult(records[0], rua, f"rua {bad[0]!r} is neither mailto: nor https:" if bad else None)


def fetch_policy(
    domain: str,
    context: ssl.SSLContext,
    *,
    timeout: float = 10.0,
    lifetime: float = DEFAULT_LIFETIME,
    port: int | None = None,
) -> str:
    """GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt: no redirects, at most 64 KiB, one deadline."""
    host = f"mta-sts.{domain}"
    port = port or int(os.environ.get(POLICY_PORT_ENV, "") or 443)
    found = resolve_host(host, lifetime=lifetime)
    if not found.addresses:
        raise PolicyError(f"cannot resolve {host}: {found.message}")
    from jcsh.runtime.tls.checks.mta_sts_fetch import PinnedHTTPS, is_http_error

    conn = PinnedHTTPS(host, found.addresses, port, context, timeout, _sni)
    # A watchdog closes the socket at the deadline: a server that drips bytes cannot hold us longer.
    watchdog = threading.Timer(timeout, conn.kill)
    watchdog.start()
    try:
        response = conn.get("/.well-known/mta-sts.txt", MAX_POLICY_BYTES + 1)
        body = response.body
        if conn.killed:  # what arrived before the cut is not the whole answer
            raise TimeoutError
        if 300 <= response.status < 400:
            where = response.getheader("Location") or "nowhere"
            raise PolicyError(
                f"{host} answered {response.status} {response.reason} (to {where}): "
                "MTA-STS forbids following redirects (RFC 8461 3.3)"
            )
        if response.status != 200:
            raise PolicyError(f"{host} answered {response.status} {response.reason}")
        ctype = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "text/plain":
            raise PolicyError(f"the policy is served as {ctype or 'no type'}, not text/plain (RFC 8461 3.3)")
        if len(body) > MAX_POLICY_BYTES:
            raise PolicyError(f"the policy is larger than {MAX_POLICY_BYTES // 1024} KiB")
    except ssl.SSLCertVerificationError as e:
        from jcsh.runtime.tls.trust import explain_verify_error

        raise PolicyError(f"the certificate of {host} is not trusted: {explain_verify_error(e, None)}") from None
    except PolicyError:
        raise
    except Exception as e:
        if not isinstance(e, OSError | ValueError) and not is_http_error(e):
            raise
        if conn.killed or isinstance(e, TimeoutError):
            raise PolicyError(f"no complete policy from {host} within {timeout:g} s") from None
        raise PolicyError(f"cannot fetch the policy from {host}: {_why(e)}") from None
    finally:
        watchdog.cancel()
        conn.close()
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError("the policy is not UTF-8 text") from None


def _why(err: Exception) -> str:
    if isinstance(err, ssl.SSLError):
        return f"TLS failed ({err.reason or err})"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def _sni(host: str) -> str | bytes:
    """host as bytes when IDNA would encode it as it is: ssl then skips the idna codec (~10 ms to import)."""
    from jcsh.runtime.dns_wire import plain_name

    return host.encode("ascii") if plain_name(host) is not None else host


def parse_policy(text: str) -> StsPolicy:
    """RFC 8461 3.2: `version: STSv1`, `mode`, `max_age`, and `mx` (one or more unless mode is none)."""
    values: dict[str, str] = {}
    mx: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise PolicyError(f"line {number} of the policy is not `key: value`: {line[:60]!r}")
        key, value = key.strip(), value.strip()
        if key == "mx":
            mx.append(value)
        else:
            values.setdefault(key, value)  # unknown keys are ignored (RFC 8461 3.2)
    if values.get("version") != "STSv1":
        raise PolicyError(f"the policy's version is {values.get('version')!r}, not STSv1")
    try:
        mode = StsMode(values.get("mode", ""))
    except ValueError:
        raise PolicyError(f"the policy's mode is {values.get('mode')!r}, not enforce, testing or none") from None
    age = values.get("max_age", "")
    if not age.isdigit() or int(age) > _MAX_AGE_LIMIT:
        raise PolicyError(f"the policy's max_age is {age!r}, not 0-{_MAX_AGE_LIMIT} seconds")
    bad = [p for p in mx if not re.fullmatch(r"(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?", p)]
    if bad:
        raise PolicyError(f"the policy's mx {bad[0]!r} is not a host name or *.domain pattern")
    if mode is not StsMode.NONE and not mx:
        raise PolicyError(f"the policy's mode is {mode.value} but it names no mx")
    return StsPolicy(mode, int(age), tuple(mx))


def render_mta_sts(result: MtaStsResult, rpt: TlsRptResult | None, hosts: Sequence[str] = ()) -> list[str]:
    """Human lines for the domain's MTA-STS and TLS-RPT, and which MX hosts the policy covers."""
    if result.status is StsStatus.ABSENT:
        lines = [f"mta-sts    none published (no _mta-sts.{result.domain} record)"]
    elif result.policy is None:
        lines = [f"mta-sts    BROKEN: {shown(result.error or '')}"]
        if result.record:
            lines.append(f"  record   {shown(result.record)}")
    else:
        p = result.policy
        lines = [f"mta-sts    mode {p.mode.value}, max_age {p.max_age} s, id {shown(result.id or '')}"]
        rows = [["", "mx", shown(pattern)] for pattern in p.mx]
        rows += [["", "covers" if result.covers(h) else "NOT covered", shown(h)] for h in hosts]
        lines += table(rows).splitlines()
    if rpt is not None:
        if rpt.record is None and rpt.error is None:
            lines.append("tls-rpt    none published")
        elif rpt.error:
            lines.append(f"tls-rpt    {shown(rpt.error)}")
        else:
            lines.append(f"tls-rpt    reports to {shown(', '.join(rpt.rua))}")
    return lines
