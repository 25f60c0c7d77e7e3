"""MTA-STS and TLS-RPT: records from a real DNS responder, policies from a real HTTPS server."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jcsh.runtime.tls.checks.mta_sts import (
    MtaStsResult,
    StsMode,
    StsStatus,
    check_mta_sts,
    check_tls_rpt,
    mx_matches,
    parse_policy,
    render_mta_sts,
)
from tests.support.dns import DnsResponder
from tests.support.https import PolicyServer
from tests.support.pki import TestCA

pytestmark = pytest.mark.timeout(20)

DOMAIN = "example.test"
POLICY = "/.well-known/mta-sts.txt"
ENFORCE = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmx: *.backup.example.test\r\nmax_age: 86400\r\n"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("sts-ca"))


@pytest.fixture
def trust(ca: TestCA) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.root_path))


@pytest.fixture
def web(ca: TestCA) -> Iterator[PolicyServer]:
    leaf = ca.issue([f"mta-sts.{DOMAIN}"])
    with PolicyServer(leaf.chain_path, leaf.key_path) as server:
        yield server


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch, web: PolicyServer) -> Iterator[DnsResponder]:
    with DnsResponder() as server:
        server.add(f"mta-sts.{DOMAIN}", "A", "127.0.0.1")
        server.txt(f"_mta-sts.{DOMAIN}", "v=STSv1; id=20260101T000000")
        monkeypatch.setenv("JCSH_NAMESERVERS", server.address)
        monkeypatch.setenv("JCSH_MTA_STS_PORT", str(web.port))
        yield server


def test_enforce_policy_is_fetched_and_mx_checked(dns: DnsResponder, web: PolicyServer, trust: ssl.SSLContext) -> None:
    web.serve(POLICY, ENFORCE)
    result = check_mta_sts(DOMAIN, trust, timeout=3, lifetime=2)
    assert result.status is StsStatus.VALID
    assert result.to_json() == {
        "record": "v=STSv1; id=20260101T000000",
        "id": "20260101T000000",
        "mode": "enforce",
        "max_age": 86400,
        "mx": ["mx1.example.test", "*.backup.example.test"],
        "status": "valid",
        "error": None,
    }
    assert result.covers("MX1.example.test.") is True
    assert result.covers("a.backup.example.test") is True
    assert result.covers("a.b.backup.example.test") is False  # the wildcard is one label
    assert result.covers("mx2.example.test") is False
    assert web.requests[0][1] == POLICY
    text = "\n".join(render_mta_sts(result, None, ["mx1.example.test", "mx2.example.test"]))
    assert "mode enforce" in text and "NOT covered  mx2.example.test" in text


@pytest.mark.parametrize("mode", ["testing", "none"])
def test_testing_and_none_modes(dns: DnsResponder, web: PolicyServer, trust: ssl.SSLContext, mode: str) -> None:
    mx = "mx: mx1.example.test\n" if mode == "testing" else ""
    web.serve(POLICY, f"version: STSv1\nmode: {mode}\n{mx}max_age: 600\n")  # bare LF is tolerated
    result = check_mta_sts(DOMAIN, trust, timeout=3, lifetime=2)
    assert result.policy is not None and result.policy.mode is StsMode(mode)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n", "not STSv1"),
        ("version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n", "not enforce, testing or none"),
        ("version: STSv1\nmode: enforce\nmax_age: 1\n", "names no mx"),
        ("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: forever\n", "max_age"),
        ("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 99999999\n", "max_age"),
        ("<html>hello</html>\n", "not `key: value`"),
        ("version: STSv1\nmode: enforce\nmx: a b\x1b[31m\nmax_age: 1\n", "not a host name"),
    ],
)
def test_malformed_policies_are_reported_with_the_reason(
    dns: DnsResponder, web: PolicyServer, trust: ssl.SSLContext, body: str, reason: str
) -> None:
    web.serve(POLICY, body)
    result = check_mta_sts(DOMAIN, trust, timeout=3, lifetime=2)
    assert result.status is StsStatus.ERROR and reason in result.error
    assert result.record == "v=STSv1; id=20260101T000000"  # what was found is still shown
    text = "\n".join(render_mta_sts(result, None))
    assert "BROKEN" in text and "\x1b" not in text


@pytest.mark.parametrize(
    ("status", "headers", "body", "reason"),
    [
        (404, {}, "not here", "404 Not Found"),
        (301, {"Location": "https://elsewhere.test/p"}, "", "forbids following redirects"),
        (200, {"Content-Type": "text/html"}, ENFORCE, "not text/plain"),
        (200, {}, "x" * (64 * 1024 + 1), "larger than 64 KiB"),
        (200, {}, b"version: STSv1\nmode: \xff\n", "not UTF-8"),
    ],
)
def test_fetch_failures_are_reported(
    dns: DnsResponder,
    web: PolicyServer,
    trust: ssl.SSLContext,
    status: int,
    headers: dict[str, str],
    body: str | bytes,
    reason: str,
) -> None:
    web.serve(POLICY, body, status=status, headers=headers)
    result = check_mta_sts(DOMAIN, trust, timeout=3, lifetime=2)
    assert result.status is StsStatus.ERROR and reason in result.error


def test_slow_policy_server_is_cut_at_the_deadline(dns: DnsResponder, web: PolicyServer, trust: ssl.SSLContext) -> None:
    web.serve(POLICY, ENFORCE)
    web.drip = 0.05  # every byte within any per-read timeout, the whole far beyond the deadline
    started = time.monotonic()
    result = check_mta_sts(DOMAIN, trust, timeout=0.6, lifetime=2)
    assert time.monotonic() - started < 2
    assert result.status is StsStatus.ERROR and "within 0.6 s" in result.error


def test_untrusted_policy_certificate(dns: DnsResponder, web: PolicyServer, tmp_path: Path) -> None:
    web.serve(POLICY, ENFORCE)
    other = ssl.create_default_context(cafile=str(TestCA(tmp_path).root_path))
    result = check_mta_sts(DOMAIN, other, timeout=3, lifetime=2)
    assert result.status is StsStatus.ERROR and "not trusted" in result.error


def test_policy_certificate_for_another_name(dns: DnsResponder, ca: TestCA, trust: ssl.SSLContext) -> None:
    leaf = ca.issue(["www.example.test"])
    with PolicyServer(leaf.chain_path, leaf.key_path) as wrong:
        wrong.serve(POLICY, ENFORCE)
        result = check_mta_sts(DOMAIN, trust, timeout=3, lifetime=2, port=wrong.port)
    assert result.status is StsStatus.ERROR and "mismatch" in result.error


def test_no_record_means_no_policy_and_no_fetch(dns: DnsResponder, web: PolicyServer, trust: ssl.SSLContext) -> None:
    result = check_mta_sts("other.test", trust, timeout=3, lifetime=2)
    assert result.status is StsStatus.ABSENT and result.covers("mx1.other.test") is None
    assert web.requests == []
    assert "none published" in "\n".join(render_mta_sts(result, None))


def test_bad_records(dns: DnsResponder, web: PolicyServer, trust: ssl.SSLContext) -> None:
    dns.txt("_mta-sts.two.test", "v=STSv1; id=1", "v=STSv1; id=2")
    dns.txt("_mta-sts.noid.test", "v=STSv1;")
    dns.servfail("_mta-sts.fail.test")
    assert "2 STSv1 records" in check_mta_sts("two.test", trust, lifetime=2).error
    assert "id is missing" in check_mta_sts("noid.test", trust, lifetime=2).error
    assert "SERVFAIL" in check_mta_sts("fail.test", trust, lifetime=2).error
    dns.txt("_mta-sts.nohost.test", "v=STSv1; id=1")
    assert "cannot resolve mta-sts.nohost.test" in check_mta_sts("nohost.test", trust, lifetime=2).error
    assert web.requests == []


def test_policy_host_that_refuses_connections(dns: DnsResponder, trust: ssl.SSLContext) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = check_mta_sts(DOMAIN, trust, timeout=2, lifetime=2, port=port)
    assert result.status is StsStatus.ERROR and "refused" in result.error


def test_tls_rpt(dns: DnsResponder) -> None:
    dns.txt(f"_smtp._tls.{DOMAIN}", "v=TLSRPTv1; rua=mailto:tls@example.test,https://r.example.test/x")
    rpt = check_tls_rpt(DOMAIN, lifetime=2)
    assert rpt.to_json() == {
        "record": "v=TLSRPTv1; rua=mailto:tls@example.test,https://r.example.test/x",
        "rua": ["mailto:tls@example.test", "https://r.example.test/x"],
        "error": None,
    }
    assert check_tls_rpt("none.test", lifetime=2).record is None
    dns.txt("_smtp._tls.bad.test", "v=TLSRPTv1; rua=ftp://x")
    assert "neither mailto: nor https:" in check_tls_rpt("bad.test", lifetime=2).error
    dns.txt("_smtp._tls.empty.test", "v=TLSRPTv1;")
    assert "no rua=" in check_tls_rpt("empty.test", lifetime=2).error
    text = "\n".join(render_mta_sts(MtaStsResult(DOMAIN, StsStatus.ABSENT), rpt))
    assert "reports to mailto:tls@example.test" in text


def test_mx_patterns() -> None:
    assert mx_matches("*.example.test", "mx.example.test")
    assert not mx_matches("*.example.test", "example.test")
    assert not mx_matches("*.example.test", ".example.test")
    assert mx_matches("MX.Example.Test.", "mx.example.test")
    assert parse_policy("version: STSv1\nmode: none\nmax_age: 0\nextra: ignored\n").mx == ()


def test_escape_sequences_in_records_stay_out_of_the_terminal(dns: DnsResponder, trust: ssl.SSLContext) -> None:
    dns.txt("_mta-sts.evil.test", "v=STSv1; id=\x1b]0;owned\x07\x1b[2J")
    dns.txt("_smtp._tls.evil.test", "v=TLSRPTv1; rua=mailto:\x1b[31mred@evil.test")
    result, rpt = check_mta_sts("evil.test", trust, lifetime=2), check_tls_rpt("evil.test", lifetime=2)
    assert result.status is StsStatus.ERROR and "\x1b" in (result.record or "")  # kept as data in JSON
    text = "\n".join(render_mta_sts(result, rpt))
    assert "\x1b" not in text and "\x07" not in text


def test_every_address_of_the_policy_host_is_tried(dns: DnsResponder, ca: TestCA, trust: ssl.SSLContext) -> None:
    leaf = ca.issue(["mta-sts.two.test"])
    with PolicyServer(leaf.chain_path, leaf.key_path, host="::1") as v6:
        v6.serve(POLICY, ENFORCE)
        dns.txt("_mta-sts.two.test", "v=STSv1; id=1")
        dns.add("mta-sts.two.test", "A", "127.0.0.2")  # tried first: nothing listens there
        dns.add("mta-sts.two.test", "AAAA", "::1")
        result = check_mta_sts("two.test", trust, timeout=3, lifetime=2, port=v6.port)
    assert result.status is StsStatus.VALID, result.error
