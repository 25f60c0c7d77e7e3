"""The resolver's plain-answer path (runtime/dns_wire.py) against dnspython, on a real DNS responder on loopback."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jcsh.runtime import resolver
from jcsh.runtime.dns_wire import Unclear, WireName, build_query, plain_name, read_reply
from jcsh.runtime.resolver import Lookup
from tests.support.dns import DnsResponder

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parent.parent
TLSA = "_25._tcp.mx1.example.test"


class Mangling(DnsResponder):
    """A responder whose replies for a few names are changed the way odd servers change them."""

    def __init__(self) -> None:
        super().__init__()
        self.truncated_once: set[str] = set()

    def answer(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        qname = query.question[0].name.to_text(omit_final_dot=True)
        if qname == "chain.test":  # a CNAME and its target's records in one answer
            response = dns.message.make_response(query)
            response.answer.append(dns.rrset.from_text("chain.test.", 300, "IN", "CNAME", "target.test."))
            response.answer.append(dns.rrset.from_text("target.test.", 300, "IN", "A", "127.0.0.9"))
            return response.to_wire()
        reply = super().answer(wire)
        if reply is None:
            return None
        if qname == "junk.test":
            return reply + b"\0"
        if qname == "truncated.test" and qname not in self.truncated_once:
            self.truncated_once.add(qname)
            return reply[:2] + bytes([reply[2] | 0x02]) + reply[3:]  # TC on the first reply only
        return reply


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mangling]:
    dns_server = Mangling()
    with dns_server:
        dns_server.add(
            "example.test", "MX", "20 mx2.example.test.", "10 MX1.Example.test.", "30 mx\\(3\\).example.test."
        )
        dns_server.add("mx1.example.test", "A", "127.0.0.1", "127.0.0.2", "127.0.0.1")
        dns_server.add("mx1.example.test", "AAAA", "::1", "2001:db8::ffff:1.2.3.4", "fe80:0:0:1::")
        dns_server.txt("example.test", "v=spf1 -all", "x" * 600)
        dns_server.add(TLSA, "TLSA", "3 1 1 " + "ab" * 32, "2 0 2 " + "cd" * 64).authenticated(TLSA)
        dns_server.add("9.0.0.127.in-addr.arpa", "PTR", "mx1.example.test.")
        dns_server.add("plain.test", "MX", "10 mx1.example.test.")
        dns_server.nodata("empty.test")
        dns_server.servfail("broken.test")
        dns_server.never_answer("slow.test")
        for name in ("junk.test", "truncated.test"):
            dns_server.add(name, "A", "127.0.0.3")
        monkeypatch.setenv("JCSH_NAMESERVERS", dns_server.address)
        yield dns_server


def _value(record: Any) -> Any:
    """A record as plain values, whichever path read it (dnspython's rdata or dns_wire's)."""
    for attrs in (("address",), ("preference", "exchange"), ("strings",), ("usage", "selector", "mtype", "cert")):
        if all(hasattr(record, a) for a in attrs):
            values = tuple(getattr(record, a) for a in attrs)
            if attrs[0] == "preference":
                return (values[0], values[1].to_text(omit_final_dot=True), str(values[1]))
            return tuple(bytes(v) if attrs[0] == "usage" and i == 3 else v for i, v in enumerate(values))
    return (record.target.to_text(True), str(record.target))


def _both(name: str, rdtype: str, lifetime: float = 2.0, dnssec: bool = False) -> tuple[Any, Any]:
    """(the plain path's outcome, dnspython's outcome), each as (values, kind, message)."""
    records, kind, message = Lookup(lifetime, dnssec=dnssec).query(name, rdtype)
    answer, akind, amessage = Lookup(lifetime, dnssec=dnssec).answer(name, rdtype)
    # sorted: the responder (dnspython's to_wire) shuffles the records of each reply
    return (sorted(_value(r) for r in records), kind, message), (
        sorted(_value(r) for r in answer or []),
        akind,
        amessage,
    )


@pytest.mark.parametrize(
    ("name", "rdtype"),
    [
        ("example.test", "MX"),
        ("mx1.example.test", "A"),
        ("MX1.example.TEST.", "AAAA"),
        ("example.test", "TXT"),
        (TLSA, "TLSA"),
        ("9.0.0.127.in-addr.arpa", "PTR"),
        ("missing.test", "A"),
        ("empty.test", "MX"),
        ("mx1.example.test", "TXT"),
    ],
)
def test_plain_answers_read_as_dnspython_reads_them(server: Mangling, name: str, rdtype: str) -> None:
    plain, reference = _both(name, rdtype)
    assert plain == reference
    if name == "example.test" and rdtype == "MX":
        # names as the reply spells them (compressed against the question's "example.test")
        assert [v[1] for v in plain[0]] == ["MX1.example.test", "mx2.example.test", "mx\\(3\\).example.test"]
    if name == "mx1.example.test" and rdtype == "A":
        assert plain[0] == [("127.0.0.1",), ("127.0.0.2",)]  # an rrset holds each record once


def test_the_ad_bit_is_read_from_the_header(server: Mangling) -> None:
    found = Lookup(2, dnssec=True).records(TLSA, "TLSA")
    assert (found.kind, found.authenticated, len(found.records)) == (None, True, 2)
    assert Lookup(2).records(TLSA, "TLSA").authenticated is False  # not asked: not given


@pytest.mark.parametrize("name", ["broken.test", "junk.test", "truncated.test", "chain.test"])
def test_replies_that_are_not_plain_get_dnspythons_outcome(server: Mangling, name: str) -> None:
    plain, reference = _both(name, "A", lifetime=1.0)
    assert plain == reference
    expected = {
        "broken.test": ([], "temporary", "answered SERVFAIL"),
        "junk.test": ([], "timeout", "no answer from"),  # dnspython drops a malformed reply and waits on
        "truncated.test": ([("127.0.0.3",)], None, None),
        "chain.test": ([("127.0.0.9",)], None, None),
    }[name]
    assert plain[0] == expected[0] and plain[1] == expected[1]
    assert expected[2] is None or expected[2] in (plain[2] or "")


def test_silence_times_out_once_within_the_lifetime(server: Mangling) -> None:
    start = time.monotonic()
    records, kind, message = Lookup(0.6).query("slow.test", "A")
    elapsed = time.monotonic() - start
    assert (records, kind) == ([], "timeout")
    assert message == f"no answer from {server.address} within 0.6 s for the A record of slow.test"
    assert 0.5 < elapsed < 1.2  # not the plain path's wait and then dnspython's again


def test_a_silent_first_server_is_passed_over_as_dnspython_does(monkeypatch: pytest.MonkeyPatch) -> None:
    with DnsResponder() as dead, DnsResponder() as alive:
        dead.never_answer()
        alive.add("example.test", "A", "127.0.0.5")
        monkeypatch.setenv("JCSH_NAMESERVERS", f"{dead.address},{alive.address}")
        start = time.monotonic()
        records, kind, _ = Lookup(3.0).query("example.test", "A")
        assert (kind, [r.address for r in records]) == (None, ["127.0.0.5"])
        assert 1.8 < time.monotonic() - start < 2.8  # the per-server timeout, then the next server


class Slow(DnsResponder):
    """Every reply 0.3 s late (each query on its own thread, as the base responder serves them)."""

    def answer(self, wire: bytes) -> bytes | None:
        time.sleep(0.3)
        return super().answer(wire)


def test_the_addresses_of_every_mx_host_are_asked_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from jcsh.runtime.mail.detect import detect

    server = Slow()
    with server:
        server.add("example.test", "MX", "10 mx1.example.test.", "20 mx2.example.test.")
        server.add("mx1.example.test", "A", "127.0.0.1")
        server.add("mx2.example.test", "AAAA", "::1")
        monkeypatch.setenv("JCSH_NAMESERVERS", server.address)
        start = time.monotonic()
        found = detect("example.test", lifetime=2)
        elapsed = time.monotonic() - start
    assert [(c.host, c.addresses, c.error) for c in found.candidates] == [
        ("mx1.example.test", ("127.0.0.1",), None),
        ("mx2.example.test", ("::1",), None),
    ]
    assert sorted(server.asked("A") + server.asked("AAAA")) == ["mx1.example.test"] * 2 + ["mx2.example.test"] * 2
    assert elapsed < 0.9  # MX, then the four address queries together: two round trips, not five


def test_a_closed_port_gets_dnspythons_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
    monkeypatch.setenv("JCSH_NAMESERVERS", f"127.0.0.1:{port}")
    plain, reference = _both("example.test", "A", lifetime=0.5)
    assert plain == reference
    assert plain[1] in ("timeout", "temporary")


def test_mx_detection_and_dane_do_not_import_dnspython(server: Mangling) -> None:
    code = (
        "import sys\n"
        "from jcsh.runtime.mail.detect import detect\n"
        "from jcsh.runtime.tls.checks.dane import fetch_tlsa\n"
        "from jcsh.runtime.tls.checks.mta_sts import check_tls_rpt\n"
        "found = detect('plain.test', lifetime=2)\n"
        "tlsa = fetch_tlsa('mx1.example.test', 25, lifetime=2)\n"
        "rpt = check_tls_rpt('example.test', lifetime=2)\n"
        "print(found.server, sorted(found.candidates[0].addresses), tlsa.authenticated, len(tlsa.raw), rpt.record)\n"
        "print(sorted(m for m in sys.modules if m == 'dns' or m.startswith('dns.')))\n"
    )
    env = dict(os.environ, JCSH_NAMESERVERS=server.address)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=20, check=True
    ).stdout.splitlines()
    addresses = ["127.0.0.1", "127.0.0.2", "2001:db8::ffff:102:304", "::1", "fe80:0:0:1::"]
    assert out == [f"mx1.example.test {addresses} True 2 None", "[]"]


def _resolv_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "resolv.conf"
    path.write_text(text)
    monkeypatch.setattr(resolver, "RESOLV_CONF", str(path))
    monkeypatch.delenv("JCSH_NAMESERVERS", raising=False)
    return path


@pytest.mark.parametrize(
    "text",
    [
        "nameserver 10.0.0.1\nnameserver ::1\n",
        "# comment\n; other\nsearch a.test b.test\noptions rotate timeout:3 ndots:2\nnameserver 10.0.0.2\n",
        "domain example.test\noptions edns0\nnameserver 192.0.2.1\nnameserver\n  nameserver 192.0.2.9\n",
    ],
)
def test_resolv_conf_read_as_dnspython_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = _resolv_conf(tmp_path, monkeypatch, text)
    ours = resolver._system_servers()
    theirs = dns.resolver.Resolver(filename=str(path))
    assert ours is not None
    assert [a for a, _ in ours.servers] == [str(n) for n in theirs.nameservers]
    assert (ours.rotate, ours.edns) == (theirs.rotate, theirs.edns == 0)
    assert Lookup(1).shown == "the system resolver (" + ", ".join(str(n) for n in theirs.nameservers) + ")"


@pytest.mark.parametrize(
    "text", ["", "search a.test\n", "nameserver fe80::1%eth0\n", "nameserver dns.example\n", "search bücher.test\n"]
)
def test_unusual_resolv_conf_is_left_to_dnspython(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    _resolv_conf(tmp_path, monkeypatch, text)
    assert resolver._system_servers() is None


def test_query_is_the_one_dnspython_would_send() -> None:
    labels = plain_name("_25._tcp.MX1.example.test.")
    assert labels is not None
    qid, wire = build_query(labels, "TLSA", dnssec=True, edns=False)
    ours = dns.message.from_wire(wire)
    theirs = dns.message.make_query("_25._tcp.MX1.example.test.", "TLSA")
    theirs.use_edns(0, dns.flags.DO, 1232)
    theirs.flags = dns.flags.RD | dns.flags.AD
    theirs.id = qid
    assert ours == theirs and ours.ednsflags == theirs.ednsflags and ours.payload == 1232
    plain = dns.message.from_wire(build_query(labels, "A", dnssec=False, edns=False)[1])
    assert (plain.flags, plain.edns) == (dns.flags.RD, -1)


@pytest.mark.parametrize("name", ["", ".", "a..b", "b\u00fccher.test", "a b.test", "x" * 64 + ".test", "a\\.b.test"])
def test_names_dnspython_must_judge_are_not_plain(name: str) -> None:
    assert plain_name(name) is None


@given(st.lists(st.binary(min_size=1, max_size=20), min_size=0, max_size=5), st.booleans())
def test_names_are_written_as_dnspython_writes_them(labels: list[bytes], omit: bool) -> None:
    theirs = dns.name.Name([*labels, b""])
    assert WireName(tuple(labels)).to_text(omit) == theirs.to_text(omit)


@settings(max_examples=300)
@given(st.binary(max_size=200), st.sampled_from(["A", "MX", "TXT", "TLSA"]))
def test_any_bytes_are_a_reply_or_unclear(data: bytes, rdtype: str) -> None:
    labels = (b"example", b"test")
    # half the time a well-formed header and question, so that the sections get read too
    if data and data[0] & 1:
        head = struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0)
        question = b"\x07example\x04test\0" + struct.pack("!HH", {"A": 1, "MX": 15, "TXT": 16, "TLSA": 52}[rdtype], 1)
        data = head + question + data
    try:
        reply = read_reply(data, 7, labels, rdtype)
    except Unclear:
        return
    assert isinstance(reply.records, tuple)


def test_an_mx_target_listed_twice_is_kept_once_as_dnspython_keeps_it() -> None:
    # A hostile server repeating a record (in another case) must not make jcsh probe the host twice.
    labels = (b"example", b"test")
    qid, query = build_query(labels, "MX", dnssec=False, edns=False, qid=4242)
    question = query[12:]
    name = b"\x02mx\x07example\x04test\x00"
    upper = b"\x02MX\x07EXAMPLE\x04TEST\x00"
    answers = b"".join(
        b"\xc0\x0c" + struct.pack("!HHIH", 15, 1, 300, 2 + len(target)) + struct.pack("!H", 10) + target
        for target in (name, name, upper)
    )
    reply = struct.pack("!HHHHHH", qid, 0x8180, 1, 3, 0, 0) + question + answers
    records = read_reply(reply, qid, labels, "MX").records
    ours = [(r.preference, r.exchange.to_text()) for r in records]
    theirs = dns.message.from_wire(reply).answer[0]
    assert ours == [(10, "mx.example.test.")] and len(theirs) == 1
