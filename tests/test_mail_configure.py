"""System_Mail_Configure: From validation, MX detection against a real DNS server on loopback, the CLI."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jcsh.runtime.credentials import CredentialStore
from jcsh.runtime.errors import ConfigError, UsageError
from jcsh.runtime.mail.configure import FROM_KEY, SERVER_KEY, TRANSPORT_KEY, configure
from jcsh.runtime.mail.detect import detect, parse_nameservers
from jcsh.runtime.registry import Registry
from tests.support.cli import jcsh
from tests.support.dns import DnsResponder

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def dns_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[DnsResponder]:
    """A loopback DNS server with a small zone; $JCSH_NAMESERVERS points at it."""
    with DnsResponder() as server:
        server.add("example.test", "MX", "20 mx2.example.test.", "10 mx1.example.test.")
        server.add("mx1.example.test", "A", "127.0.0.1")
        server.add("mx2.example.test", "AAAA", "::1")
        server.add("fallback.test", "MX", "10 gone.fallback.test.", "20 mx2.example.test.")
        server.add("implicit.test", "A", "127.0.0.2")
        server.nodata("empty.test")
        server.null_mx("nomail.test")
        server.servfail("broken.test")
        server.never_answer("slow.test")
        server.add("dangling.test", "MX", "10 gone.dangling.test.")
        server.add("stalled.test", "MX", "10 slow.test.")
        server.add("smtp.example.test", "A", "127.0.0.1")
        monkeypatch.setenv("JCSH_NAMESERVERS", server.address)
        yield server


def written(registry: Registry) -> dict[str, str | None]:
    try:
        return {p: v for p, v in registry.walk("/configuration/mail") if v is not None}
    except Exception:
        return {}


# -- detection ------------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_mx_by_preference_all_candidates_reported(
    registry: Registry, credentials: CredentialStore, dns_server: DnsResponder
) -> None:
    result = configure(registry, credentials, "Ops <ops@example.test>")
    assert (result.status, result.server, result.detected_via, result.exit_code) == (
        "Completed",
        "mx1.example.test",
        "mx",
        0,
    )
    assert [(c.preference, c.host, c.addresses) for c in result.candidates] == [
        (10, "mx1.example.test", ("127.0.0.1",)),
        (20, "mx2.example.test", ("::1",)),
    ]
    assert written(registry) == {
        FROM_KEY: "Ops <ops@example.test>",
        SERVER_KEY: "mx1.example.test",
        TRANSPORT_KEY: "smtp",
    }
    assert dns_server.asked("MX") == ["example.test"]


@pytest.mark.timeout(20)
def test_most_preferred_that_resolves_is_chosen(
    registry: Registry, credentials: CredentialStore, dns_server: DnsResponder
) -> None:
    result = configure(registry, credentials, "ops@fallback.test")
    assert (result.status, result.server, result.detected_via) == ("Completed", "mx2.example.test", "mx")
    first = result.candidates[0]
    assert (first.host, first.addresses) == ("gone.fallback.test", ())
    assert "NXDOMAIN" in (first.error or "")


@pytest.mark.timeout(20)
def test_implicit_mx_from_the_address_record(
    registry: Registry, credentials: CredentialStore, dns_server: DnsResponder
) -> None:
    result = configure(registry, credentials, "ops@implicit.test")
    assert (result.status, result.server, result.detected_via) == ("Completed", "implicit.test", "implicit-mx")
    assert result.to_json()["candidates"] == [
        {"host": "implicit.test", "preference": 0, "addresses": ["127.0.0.2"], "error": None}
    ]


FAILURES = [
    # domain, error kind, words the message must hold
    ("missing.test", "nxdomain", "does not exist (NXDOMAIN)"),
    ("nomail.test", "null-mx", "null MX (RFC 7505)"),
    ("empty.test", "no-answer", "neither an MX record nor an address record"),
    ("broken.test", "temporary", "temporary DNS failure"),
    ("slow.test", "timeout", "no answer from"),
    ("dangling.test", "no-address", "has an address record"),
    ("stalled.test", "temporary", "could not be resolved for now"),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("domain", "kind", "words"), FAILURES)
def test_detection_failures_end_in_status_error(
    registry: Registry, credentials: CredentialStore, dns_server: DnsResponder, domain: str, kind: str, words: str
) -> None:
    registry.set("/configuration/mail/Port", "2525")
    result = configure(registry, credentials, f"ops@{domain}", lifetime=0.5)
    assert (result.status, result.server) == ("Error", None)
    assert result.error is not None and result.error["detection"] == kind
    # error.kind is one of the error table's kinds, and the exit code follows it.
    expected = {"timeout": ("timeout", 4), "temporary": ("temporary", 75)}.get(kind, ("failed", 1))
    assert (result.error["kind"], result.exit_code) == expected
    assert words in result.error["message"]
    assert "--server HOST" in result.error["message"]  # asks for the hostname
    assert written(registry) == {"/configuration/mail/Port": "2525"}  # nothing written


@pytest.mark.timeout(20)
@pytest.mark.parametrize("domain", ["broken.test", "slow.test"])
def test_temporary_failure_never_falls_back_to_the_address_record(dns_server: DnsResponder, domain: str) -> None:
    dns_server.add(domain, "A", "127.0.0.9")  # would make an implicit MX if anyone asked
    result = detect(domain, lifetime=0.5)
    assert result.server is None and result.kind in ("temporary", "timeout")
    assert dns_server.asked("A") == [] and dns_server.asked("AAAA") == []


@pytest.mark.timeout(20)
def test_ipv6_name_server_with_port(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        server = DnsResponder("::1")
        server.start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        server.add("v6.test", "MX", "5 mx.v6.test.").add("mx.v6.test", "AAAA", "::1")
        monkeypatch.setenv("JCSH_NAMESERVERS", server.address)
        result = detect("v6.test", lifetime=3)
        assert (result.server, result.via) == ("mx.v6.test", "mx")
        assert server.address in result.nameservers
    finally:
        server.stop()


@pytest.mark.timeout(10)
def test_responder_answers_over_tcp_too(dns_server: DnsResponder) -> None:
    import dns.message
    import dns.query

    reply = dns.query.tcp(dns.message.make_query("example.test", "MX"), "127.0.0.1", port=dns_server.port, timeout=3)
    assert sorted(r.preference for r in reply.answer[0]) == [10, 20]


NAMESERVERS = [
    ("127.0.0.1", [("127.0.0.1", 53)]),
    ("127.0.0.1:5353", [("127.0.0.1", 5353)]),
    ("[::1]:5353", [("::1", 5353)]),
    ("::1", [("::1", 53)]),
    ("[::1]", [("::1", 53)]),
    (" 127.0.0.1:53 , [::1]:54 ", [("127.0.0.1", 53), ("::1", 54)]),
]


@pytest.mark.parametrize(("text", "expected"), NAMESERVERS)
def test_parse_nameservers(text: str, expected: list[tuple[str, int]]) -> None:
    assert parse_nameservers(text) == expected


@pytest.mark.parametrize("text", ["ns.example.test", "[::1", "[::1]5353", "127.0.0.1:0", "127.0.0.1:x", ",", "1.2.3"])
def test_parse_nameservers_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match="JCSH_NAMESERVERS"):
        parse_nameservers(text)


# -- given server, From validation, what is written -----------------------------------------------


@pytest.mark.timeout(20)
def test_given_server_is_stored_as_given(
    registry: Registry, credentials: CredentialStore, dns_server: DnsResponder
) -> None:
    result = configure(registry, credentials, "ops@example.test", "smtp.example.test")
    assert (result.status, result.server, result.detected_via, result.candidates) == (
        "Completed",
        "smtp.example.test",
        "given",
        (),
    )
    assert result.to_json()["detected_via"] == "given"
    assert dns_server.asked("MX") == []
    assert written(registry)[SERVER_KEY] == "smtp.example.test"


@pytest.mark.timeout(20)
def test_given_server_that_does_not_resolve_is_a_warning(
    registry: Registry, credentials: CredentialStore, dns_server: DnsResponder
) -> None:
    result = configure(registry, credentials, "ops@example.test", "Relay.Missing.test")
    assert result.status == "Completed"
    assert any("Relay.Missing.test does not resolve" in w for w in result.warnings)
    assert written(registry)[SERVER_KEY] == "Relay.Missing.test"


def test_given_ip_server_needs_no_lookup(
    registry: Registry, credentials: CredentialStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JCSH_NAMESERVERS", "127.0.0.1:1")  # nobody there: a lookup would show
    result = configure(registry, credentials, "ops@example.test", "[::1]")
    assert result.status == "Completed"
    assert not any("does not resolve" in w for w in result.warnings)


@pytest.mark.parametrize(
    "bad",
    [
        "foo",
        "ops@",
        "@example.test",
        "a@x.test, b@y.test",
        "Ops <ops@example.test",
        "ops@example.test\r\nBcc: x@y.test",
        "",
        "a b@example.test",
    ],
)
def test_bad_from_is_a_usage_error_and_writes_nothing(
    registry: Registry, credentials: CredentialStore, bad: str
) -> None:
    with pytest.raises(UsageError) as info:
        configure(registry, credentials, bad, "smtp.example.test")
    assert info.value.exit_code == 2
    assert written(registry) == {}


@pytest.mark.parametrize("bad", ["smtp.example.test:587", "bad host", "[smtp.example.test]", "-x.test"])
def test_bad_server_is_a_usage_error(registry: Registry, credentials: CredentialStore, bad: str) -> None:
    with pytest.raises(UsageError, match="Server"):
        configure(registry, credentials, "ops@example.test", bad)
    assert written(registry) == {}


def test_existing_transport_is_kept(registry: Registry, credentials: CredentialStore) -> None:
    registry.set(TRANSPORT_KEY, "smtps")
    result = configure(registry, credentials, "ops@example.test", "127.0.0.1")
    assert TRANSPORT_KEY not in result.written
    assert registry.value(TRANSPORT_KEY) == "smtps"


def test_server_change_and_missing_credential_are_reported(registry: Registry, credentials: CredentialStore) -> None:
    registry.set(SERVER_KEY, "old.example.test")
    result = configure(registry, credentials, "ops@example.test", "127.0.0.1")
    assert any("was old.example.test" in w for w in result.warnings)
    assert any("no smtp credential has endpoint 127.0.0.1" in w for w in result.warnings)


# -- the command line -----------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_cli_json_shape(home: Path, dns_server: DnsResponder) -> None:
    ran = jcsh(home, "configure", "--from", "ops@example.test", "--json")
    assert ran.code == 0
    data = ran.json
    assert isinstance(data, dict)
    assert {k: data[k] for k in ("status", "from", "server", "detected_via")} == {
        "status": "Completed",
        "from": "ops@example.test",
        "server": "mx1.example.test",
        "detected_via": "mx",
    }
    assert [c["host"] for c in data["candidates"]] == ["mx1.example.test", "mx2.example.test"]
    assert "error" not in data


@pytest.mark.timeout(20)
def test_cli_error_status_without_terminal_exits_1(home: Path, dns_server: DnsResponder) -> None:
    ran = jcsh(home, "configure", "--from", "ops@nomail.test", "--json")
    assert ran.code == 1
    assert ran.json["status"] == "Error"
    assert ran.json["error"]["kind"] == "failed" and ran.json["error"]["detection"] == "null-mx"
    human = jcsh(home, "configure", "--from", "ops@slow.test", "--timeout", "0.5")
    assert human.code == 4  # a DNS timeout: the same kind and exit code as every other timeout
    assert "Status:     Error: no answer from" in human.out


def test_cli_bad_from_exits_2(home: Path) -> None:
    ran = jcsh(home, "configure", "--from", "not-an-address", "--server", "127.0.0.1", "--json")
    assert ran.code == 2
    assert ran.json["error"]["kind"] == "usage"


def test_cli_from_is_required(home: Path) -> None:
    assert jcsh(home, "configure").code == 2


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("answer", "code", "server"), [("smtp.example.test", 0, "smtp.example.test"), ("", 1, None)])
def test_cli_prompts_for_the_hostname_on_a_terminal(
    home: Path, dns_server: DnsResponder, answer: str, code: int, server: str | None
) -> None:
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "jcsh", "--home", str(home), "configure", "--from", "ops@nomail.test"],
        cwd=str(ROOT),
        env={**os.environ, "NO_COLOR": "1"},
        encoding="utf-8",
        timeout=15,
    )
    child.expect("Status:     Error: nomail.test publishes a null MX")
    child.expect("Mail server hostname")
    child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == code
    from jcsh.runtime.registry import open_registry

    reg = open_registry(home)
    try:
        assert reg.value(SERVER_KEY) == server
    finally:
        reg.close()


def test_given_server_is_checked_with_the_system_resolver(
    registry: Registry, credentials: CredentialStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without $JCSH_NAMESERVERS the check is the one connecting will do: /etc/hosts knows localhost.
    monkeypatch.delenv("JCSH_NAMESERVERS", raising=False)
    result = configure(registry, credentials, "ops@example.test", "localhost")
    assert result.status == "Completed"
    assert not any("does not resolve" in w for w in result.warnings)
