"""DNS messages on the wire for the common lookups (RFC 1035): a query built and a plain answer read, stdlib only.

dnspython costs 35-45 ms to import (dns.message alone pulls in importlib.metadata, dataclasses,
dns.asyncquery...), more than the whole network work of `tls probe --mx`. runtime/resolver.py asks
one question here first and keeps the answer only when it is a plain one: the question echoed, no
truncation, NOERROR or NXDOMAIN, class IN, no CNAME, every record of a type read here well formed.
Anything else is None (`Unclear`), and the resolver asks dnspython again, which then decides every
unusual case (SERVFAIL, TCP after truncation, chains, retries, timeouts) exactly as before.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import threading
import time
from collections.abc import Sequence

from jcsh.runtime.records import NamedTuple

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "WireName",
    "AddressRecord",
    "MxRecord",
    "TxtRecord",
    "TlsaData",
    "PtrRecord",
    "Reply",
    "Unclear",
    "NoReply",
    "TYPES",
    "plain_name",
    "build_query",
    "read_reply",
    "ask_all",
]

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "TLSA": 52}
_READ = frozenset({"A", "AAAA", "MX", "TXT", "TLSA", "PTR"})  # the types whose records are returned
# Records that may stand beside an answer (authority, DNSSEC, EDNS) and are skipped unread.
_SKIPPED = frozenset({2, 6, 41, 43, 46, 47, 48, 50})  # NS SOA OPT DS RRSIG NSEC DNSKEY NSEC3
_CNAME, _DNAME, _OPT = 5, 39, 41
_FLAG_QR, _FLAG_TC, _FLAG_RD, _FLAG_AD = 0x8000, 0x0200, 0x0100, 0x0020
_EDNS_DO = 0x8000
_EDNS_PAYLOAD = 1232  # dnspython's default, the DNS flag day 2020 size
_LABEL = re.compile(r"[A-Za-z0-9_*-]{1,63}")
_ESCAPED = b'"().;\\@$'  # escaped with a backslash in presentation form, as dnspython writes names


class Unclear(Exception):
    """Not a plain answer: the caller asks again through dnspython."""


class NoReply(Unclear):
    """No reply within the wait: the caller tries the next server, as dnspython does after a timeout."""


class WireName:
    """A domain name read from a message: its labels as sent, written as dnspython's Name.to_text writes it."""

    __slots__ = ("labels",)

    def __init__(self, labels: tuple[bytes, ...]) -> None:
        self.labels = labels  # without the root label

    def to_text(self, omit_final_dot: bool = False) -> str:
        if not self.labels:
            return "."
        text = ".".join(_escapify(label) for label in self.labels)
        return text if omit_final_dot else text + "."

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"<WireName {self.to_text()}>"

    # Names compare as DNS compares them (ASCII case folded), as dnspython's Name does: an rrset that
    # lists the same MX or PTR target twice keeps it once.
    def __eq__(self, other: object) -> bool:
        return isinstance(other, WireName) and self._folded() == other._folded()

    def __hash__(self) -> int:
        return hash(self._folded())

    def _folded(self) -> tuple[bytes, ...]:
        return tuple(label.lower() for label in self.labels)


def _escapify(label: bytes) -> str:
    out = []
    for c in label:
        if c in _ESCAPED:
            out.append("\\" + chr(c))
        elif 0x20 < c < 0x7F:
            out.append(chr(c))
        else:
            out.append(f"\\{c:03d}")
    return "".join(out)


class AddressRecord(NamedTuple):
    address: str


class MxRecord(NamedTuple):
    preference: int
    exchange: WireName


class TxtRecord(NamedTuple):
    strings: tuple[bytes, ...]


class TlsaData(NamedTuple):
    usage: int
    selector: int
    mtype: int
    cert: bytes


class PtrRecord(NamedTuple):
    target: WireName


class Reply(NamedTuple):
    """A plain answer: the records (empty for NXDOMAIN and no-data), NXDOMAIN or not, and the AD bit."""

    records: tuple[Any, ...]
    nxdomain: bool
    authenticated: bool


def plain_name(name: str) -> tuple[bytes, ...] | None:
    """The labels of an ASCII host name with nothing to escape or IDNA-encode, else None (dnspython's to parse)."""
    text = name[:-1] if name.endswith(".") else name
    labels = text.split(".")
    if not text or len(text) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return tuple(label.encode("ascii") for label in labels)


_ids = bytearray()  # query ids drawn from the OS in bulk (each os.urandom call gives the GIL away)
_ids_lock = threading.Lock()


def _new_id() -> int:
    with _ids_lock:
        if len(_ids) < 2:
            _ids.extend(os.urandom(64))
        qid = int.from_bytes(_ids[:2], "big")
        del _ids[:2]
    return qid


def build_query(
    labels: tuple[bytes, ...], rdtype: str, *, dnssec: bool, edns: bool, qid: int | None = None
) -> tuple[int, bytes]:
    """(id, message): RD set; with dnssec, AD asked and EDNS0 with DO (as runtime/resolver.py asks dnspython)."""
    qid = _new_id() if qid is None else qid
    flags = _FLAG_RD | (_FLAG_AD if dnssec else 0)
    use_edns = dnssec or edns
    head = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 1 if use_edns else 0)
    qname = b"".join(bytes((len(label),)) + label for label in labels) + b"\0"
    message = head + qname + struct.pack("!HH", TYPES[rdtype], 1)
    if use_edns:  # OPT: root owner, payload size as class, version 0, DO in the flags
        message += b"\0" + struct.pack("!HHIH", _OPT, _EDNS_PAYLOAD, _EDNS_DO if dnssec else 0, 0)
    return qid, message


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise Unclear("short message")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def name(self) -> tuple[bytes, ...]:
        """A name at the current position, compression pointers followed (only backwards)."""
        labels: list[bytes] = []
        at, end, jumps, size = self.at, None, 0, 1
        while True:
            if at >= len(self.data):
                raise Unclear("name runs past the message")
            length = self.data[at]
            if length == 0:
                at += 1
                break
            if length & 0xC0 == 0xC0:
                if at + 1 >= len(self.data):
                    raise Unclear("short pointer")
                target = ((length & 0x3F) << 8) | self.data[at + 1]
                if end is None:
                    end = at + 2
                if target >= at or jumps > 127:
                    raise Unclear("bad compression pointer")
                at, jumps = target, jumps + 1
                continue
            if length & 0xC0:
                raise Unclear("unknown label type")
            label = self.data[at + 1 : at + 1 + length]
            if len(label) != length:
                raise Unclear("label runs past the message")
            labels.append(label)
            size += length + 1
            if size > 255:
                raise Unclear("name too long")
            at += 1 + length
        self.at = end if end is not None else at
        return tuple(labels)


def _rdata(reader: _Reader, rdtype: int, length: int) -> Any:
    end = reader.at + length
    if rdtype == 1:
        if length != 4:
            raise Unclear("A record of the wrong size")
        record: Any = AddressRecord(socket.inet_ntop(socket.AF_INET, reader.take(4)))
    elif rdtype == 28:
        if length != 16:
            raise Unclear("AAAA record of the wrong size")
        record = AddressRecord(socket.inet_ntop(socket.AF_INET6, reader.take(16)))
    elif rdtype == 15:
        (preference,) = reader.unpack("!H")
        record = MxRecord(preference, WireName(reader.name()))
    elif rdtype == 12:
        record = PtrRecord(WireName(reader.name()))
    elif rdtype == 16:
        strings = []
        while reader.at < end:
            (n,) = reader.unpack("!B")
            strings.append(reader.take(n))
        if not strings:
            raise Unclear("TXT record without strings")
        record = TxtRecord(tuple(strings))
    elif rdtype == 52:
        usage, selector, mtype = reader.unpack("!BBB")
        if reader.at >= end:
            raise Unclear("TLSA record without data")
        record = TlsaData(usage, selector, mtype, reader.take(end - reader.at))
    else:
        raise Unclear(f"type {rdtype}")
    if reader.at != end:
        raise Unclear("record length does not match its data")
    return record


def read_reply(data: bytes, qid: int, labels: tuple[bytes, ...], rdtype: str) -> Reply:
    """The records of rdtype at the asked name in a plain answer; Unclear for anything else."""
    reader = _Reader(data)
    rid, flags, qdcount, ancount, nscount, arcount = reader.unpack("!HHHHHH")
    if rid != qid or not flags & _FLAG_QR or flags & 0x7800 or flags & _FLAG_TC or qdcount != 1:
        raise Unclear("not the reply to this query, or truncated")
    rcode = flags & 0x000F
    if rcode not in (0, 3):  # NOERROR, NXDOMAIN
        raise Unclear(f"rcode {rcode}")
    asked = tuple(label.lower() for label in labels)
    qname = reader.name()
    qtype, qclass = reader.unpack("!HH")
    if tuple(label.lower() for label in qname) != asked or qtype != TYPES[rdtype] or qclass != 1:
        raise Unclear("another question")
    wanted = TYPES[rdtype]
    records: list[Any] = []
    opts = 0
    for section, count in enumerate((ancount, nscount, arcount)):
        for _ in range(count):
            owner = reader.name()
            rtype, rclass, ttl, length = reader.unpack("!HHIH")
            if rtype == _OPT:
                opts += 1
                if section != 2 or owner or opts > 1 or ttl >> 24:  # extended rcode: not plain
                    raise Unclear("unusual OPT record")
                reader.take(length)
                continue
            if rclass != 1 or (rtype in (_CNAME, _DNAME) and section == 0):
                raise Unclear("another class, or a chain")
            if section == 0 and rtype == wanted and tuple(label.lower() for label in owner) == asked:
                record = _rdata(reader, rtype, length)
                if record not in records:  # an rrset holds each record once
                    records.append(record)
            elif rtype in _SKIPPED or rtype in TYPES.values():
                start = reader.at
                if rtype in (1, 28, 15, 16, 52, 12):  # still checked where the type is one read here
                    _rdata(reader, rtype, length)
                else:
                    reader.take(length)
                if reader.at != start + length:
                    raise Unclear("record length does not match its data")
            else:
                raise Unclear(f"record type {rtype}")
    if reader.at != len(data):
        raise Unclear("trailing bytes")
    if rcode == 3 and ancount:
        raise Unclear("NXDOMAIN with an answer")
    return Reply(tuple(records), rcode == 3, bool(flags & _FLAG_AD))


def ask_all(
    server: tuple[str, int],
    questions: Sequence[tuple[tuple[bytes, ...], str]],
    wait: float,
    *,
    dnssec: bool,
    edns: bool,
) -> list[Reply | Unclear]:
    """Several queries over UDP to server at once, waiting at most `wait` seconds in all: each
    question's plain Reply, or the Unclear (NoReply: silence) that ends it.

    Sent together from one socket (told apart by their ids), a batch costs one round trip instead
    of one each (an MX host's A and AAAA, every host of a domain), and few system calls: each
    gives the GIL away, and gets it back only when another thread lets go (up to 5 ms while one
    imports). Each reply is judged alone, as separate queries would be.
    """
    out: list[Reply | Unclear] = [NoReply("no reply in time")] * len(questions)
    waiting: dict[int, int] = {}  # query id -> question
    messages = []
    for i, (labels, rdtype) in enumerate(questions):
        if rdtype not in _READ:
            out[i] = Unclear(f"{rdtype} is not read here")
            continue
        qid = _new_id()
        while qid in waiting:
            qid = _new_id()
        waiting[qid] = i
        messages.append(build_query(labels, rdtype, dnssec=dnssec, edns=edns, qid=qid)[1])
    if not waiting:
        return out
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    deadline = time.monotonic() + wait
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect(server)  # only the server's own datagrams reach this socket
            for message in messages:
                sock.send(message)
            while waiting:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                data = sock.recv(65535)
                i = waiting.pop(int.from_bytes(data[:2], "big"), -1) if len(data) >= 2 else -1
                if i < 0:
                    continue  # a late reply to an earlier query, or not DNS: dnspython ignores it too
                try:
                    out[i] = read_reply(data, int.from_bytes(data[:2], "big"), *questions[i])
                except Unclear as e:
                    out[i] = e
    except TimeoutError:
        pass  # what has not come is NoReply
    except OSError as e:  # ICMP port unreachable and the like: dnspython decides what they mean
        for i in waiting.values():
            out[i] = Unclear(str(e))
    return out
