"""SPF (pyspf) and DMARC (dmarc) of the sender domain, through a real DNS responder on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jcsh.runtime.mail.dnsauth import SpfVerdict, check_dns_auth, find_dmarc
from jcsh.runtime.mail.settings import MAIL
from jcsh.runtime.registry import Registry
from tests.support.cli import jcsh
from tests.support.dns import DnsResponder

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[DnsResponder]:
    with DnsResponder() as server:
        server.add("relay.example.test", "A", "192.0.2.10")
        server.add("relay2.example.test", "A", "192.0.2.10", "198.51.100.7")
        server.add("spf.provider.test", "TXT", '"v=spf1 ip4:198.51.100.0/24 -all"')
        monkeypatch.setenv("JCSH_NAMESERVERS", server.address)
        yield server


def test_spf_authorizes_the_relay(dns: DnsResponder) -> None:
    dns.txt("example.test", "v=spf1 ip4:192.0.2.10 include:spf.provider.test -all", "google-site-verification=x")
    result = check_dns_auth("ops@example.test", "relay2.example.test", lifetime=2)
    assert result.spf_record == "v=spf1 ip4:192.0.2.10 include:spf.provider.test -all"
    assert sorted((c.address, c.verdict) for c in result.spf) == [
        ("192.0.2.10", SpfVerdict.PASS),
        ("198.51.100.7", SpfVerdict.PASS),  # through the include
    ]
    assert result.authorized is True
    assert result.to_json()["spf"]["authorized"] is True


@pytest.mark.parametrize(
    ("record", "verdict"),
    [
        ("v=spf1 ip4:203.0.113.1 -all", SpfVerdict.FAIL),
        ("v=spf1 ip4:203.0.113.1 ~all", SpfVerdict.SOFTFAIL),
        ("v=spf1 ?all", SpfVerdict.NEUTRAL),
        ("v=spf1 include:missing.test -all", SpfVerdict.PERMERROR),
        ("v=spf1 bogus:thing -all", SpfVerdict.PERMERROR),
    ],
)
def test_spf_not_authorizing_the_relay(dns: DnsResponder, record: str, verdict: SpfVerdict) -> None:
    dns.txt("example.test", record)
    result = check_dns_auth("ops@example.test", "relay.example.test", lifetime=2)
    assert result.spf[0].verdict is verdict and result.authorized is False


def test_no_spf_record_and_unresolvable_relay(dns: DnsResponder) -> None:
    dns.nodata("example.test")
    result = check_dns_auth("ops@example.test", "relay.example.test", lifetime=2)
    assert result.spf_record is None and result.spf[0].verdict is SpfVerdict.NONE
    gone = check_dns_auth("ops@example.test", "nowhere.example.test", lifetime=2)
    assert gone.spf == () and "cannot resolve nowhere.example.test" in gone.relay_error


def test_spf_dns_failure_is_temporary(dns: DnsResponder) -> None:
    dns.txt("example.test", "v=spf1 include:broken.test -all")
    dns.servfail("broken.test")
    result = check_dns_auth("ops@example.test", "relay.example.test", lifetime=1)
    assert result.spf[0].verdict is SpfVerdict.TEMPERROR


def test_two_spf_records(dns: DnsResponder) -> None:
    dns.txt("example.test", "v=spf1 -all", "v=spf1 +all")
    result = check_dns_auth("ops@example.test", "relay.example.test", lifetime=2)
    assert "2 SPF records" in result.spf_error and result.authorized is False


def test_private_relay_address_is_flagged(dns: DnsResponder) -> None:
    dns.add("inside.example.test", "A", "10.1.2.3")
    dns.txt("example.test", "v=spf1 ip4:10.1.2.3 -all")
    result = check_dns_auth("ops@example.test", "inside.example.test", lifetime=2)
    assert result.private == ("10.1.2.3",)


def test_dmarc_policy_own_and_inherited(dns: DnsResponder) -> None:
    dns.txt("_dmarc.example.test", "v=DMARC1; p=reject; sp=quarantine; pct=50; rua=mailto:d@example.test")
    own = find_dmarc("example.test")
    assert (own.found_at, own.policy, own.pct, own.rua) == ("example.test", "reject", 50, ("mailto:d@example.test",))
    sub = find_dmarc("jobs.eu.example.test")  # tree walk up to the organizational record; sp applies
    assert (sub.found_at, sub.policy) == ("example.test", "quarantine")
    assert sub.to_json()["record"].startswith("v=DMARC1")


def test_dmarc_absent_malformed_and_duplicated(dns: DnsResponder) -> None:
    assert find_dmarc("none.test").record is None and find_dmarc("none.test").error is None
    dns.txt("_dmarc.bad.test", "v=DMARC1; p=maybe")
    assert "malformed" in find_dmarc("bad.test").error
    dns.txt("_dmarc.two.test", "v=DMARC1; p=none", "v=DMARC1; p=reject")
    assert "2 DMARC records" in find_dmarc("two.test").error
    dns.servfail("_dmarc.fail.test")
    assert "SERVFAIL" in find_dmarc("fail.test").error


def test_a_very_deep_domain_is_walked_in_at_most_eight_lookups(dns: DnsResponder) -> None:
    deep = ".".join(f"l{i}" for i in range(12)) + ".example.test"
    find_dmarc(deep)
    assert len(dns.asked("TXT")) <= 8


def _configure(registry: Registry) -> None:
    registry.set(f"{MAIL}/Server", "relay.example.test")
    registry.set(f"{MAIL}/Transport", "smtp")
    registry.set(f"{MAIL}/From", "Ops <ops@example.test>")
    registry.set(f"{MAIL}/JavaMail/mail.smtp.starttls.required", "true")


def test_doctor_dns_warns_with_the_fix_and_notes_dmarc(dns: DnsResponder, home: Path, registry: Registry) -> None:
    _configure(registry)
    dns.txt("example.test", "v=spf1 ip4:203.0.113.1 -all")
    dns.txt("_dmarc.example.test", "v=DMARC1; p=reject")
    ran = jcsh(home, "mail", "doctor", "--dns", "--timeout", "2")
    assert ran.code == 0, ran.err  # warnings and notes: the configuration can still send
    assert "warning: SPF of example.test does not authorize the relay relay.example.test: 192.0.2.10: fail" in ran.out
    assert (
        'fix:  add ip4:192.0.2.10 to the SPF record of example.test: "v=spf1 ip4:192.0.2.10 ip4:203.0.113.1 -all"'
        in ran.out
    )
    assert "note: DMARC policy of example.test: p=reject, pct=100" in ran.out
    assert "authorize the relay in SPF or sign with DKIM" in ran.out
    data = jcsh(home, "mail", "doctor", "--dns", "--json").json
    levels = {f["level"] for f in data["findings"] if "SPF" in f["message"] or "DMARC" in f["message"]}
    assert levels == {"warning", "note"}


def test_doctor_dns_quiet_when_spf_passes(dns: DnsResponder, home: Path, registry: Registry) -> None:
    _configure(registry)
    dns.txt("example.test", "v=spf1 ip4:192.0.2.0/24 -all")
    ran = jcsh(home, "mail", "doctor", "--dns")
    assert "SPF" not in ran.out
    assert "publishes no DMARC record" in ran.out  # and how to start with p=none
    asked = len(dns.queries)
    assert "DMARC" not in jcsh(home, "mail", "doctor").out
    assert len(dns.queries) == asked  # without --dns, no DNS at all


def test_doctor_dns_bad_timeout(home: Path) -> None:
    ran = jcsh(home, "mail", "doctor", "--dns", "--timeout", "soon")
    assert ran.code == 2 and "Traceback" not in ran.err
