"""A real DNS server on loopback (UDP and TCP, same port) built on dnspython's message API.

    with DnsResponder() as dns_server:
        dns_server.add("example.test", "MX", "10 mx1.example.test.", "20 mx2.example.test.")
        dns_server.add("mx1.example.test", "A", "127.0.0.1")
        dns_server.nodata("empty.test")          # exists, no records: NODATA for every type
        dns_server.null_mx("nomail.test")        # MX 0 .
        dns_server.servfail("broken.test")
        dns_server.never_answer("slow.test")     # or never_answer() for every name
        dns_server.authenticated("_25._tcp.mx1.example.test")  # AD bit, as a validating resolver sets it
        env = {"JCSH_NAMESERVERS": dns_server.address}

Any other name gets NXDOMAIN. `queries` records (name, type) of every question received.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["DnsResponder"]


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


class DnsResponder:
    """An authoritative responder for whatever zone a test configures; a context manager."""

    def __init__(self, host: str = "127.0.0.1", *, tcp: bool = True) -> None:
        self.host = host
        self.port = 0
        self.tcp = tcp
        self._records: dict[tuple[dns.name.Name, int], list[str]] = {}
        self._existing: set[dns.name.Name] = set()
        self._silent: set[dns.name.Name] = set()
        self._servfail: set[dns.name.Name] = set()
        self._secure: set[dns.name.Name] = set()
        self.silent_all = False
        self.queries: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []

    # -- the zone -----------------------------------------------------------------------------

    def add(self, name: str, rdtype: str, *rdatas: str) -> DnsResponder:
        """Records of one type at name (rdata in zone-file text, e.g. "10 mx.example.test.")."""
        key = (_name(name), dns.rdatatype.from_text(rdtype))
        with self._lock:
            self._existing.add(key[0])
            self._records.setdefault(key, []).extend(rdatas)
        return self

    def nodata(self, name: str) -> DnsResponder:
        """The name exists but has no records: every type gets an empty NOERROR answer."""
        with self._lock:
            self._existing.add(_name(name))
        return self

    def null_mx(self, name: str) -> DnsResponder:
        """RFC 7505: `MX 0 .`, the domain accepts no mail."""
        return self.add(name, "MX", "0 .")

    def authenticated(self, name: str) -> DnsResponder:
        """Answers for name carry the AD bit when the query asks for it (DO or AD), as a validating resolver's do."""
        with self._lock:
            self._secure.add(_name(name))
        return self

    def txt(self, name: str, *texts: str) -> DnsResponder:
        """TXT records, each given as its text (quoted here; split in 255-byte strings when longer)."""
        quoted = []
        for text in texts:
            data = text.encode()
            chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
            quoted.append(" ".join('"' + c.decode().replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks))
        return self.add(name, "TXT", *quoted)

    def servfail(self, name: str) -> DnsResponder:
        with self._lock:
            self._servfail.add(_name(name))
        return self

    def never_answer(self, name: str | None = None) -> DnsResponder:
        """Drop queries for name (every query when name is None), as a dead server would."""
        with self._lock:
            if name is None:
                self.silent_all = True
            else:
                self._silent.add(_name(name))
        return self

    @property
    def address(self) -> str:
        """The value for $JCSH_NAMESERVERS."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def asked(self, rdtype: str) -> list[str]:
        """The names asked for with this record type, in order."""
        with self._lock:
            return [n for n, t in self.queries if t == rdtype]

    # -- answering ----------------------------------------------------------------------------

    def answer(self, wire: bytes) -> bytes | None:
        """The response to one query in wire format, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # not DNS: a real server drops it too
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        qname, rdtype = question.name, question.rdtype
        with self._lock:
            self.queries.append((qname.to_text(omit_final_dot=True), dns.rdatatype.to_text(rdtype)))
            if self.silent_all or qname in self._silent:
                return None
            if qname in self._servfail:
                response.set_rcode(dns.rcode.SERVFAIL)
                return response.to_wire()
            if qname not in self._existing:
                response.set_rcode(dns.rcode.NXDOMAIN)
                return response.to_wire()
            rdatas = list(self._records.get((qname, rdtype), []))
            asks_ad = bool(query.flags & dns.flags.AD or query.ednsflags & dns.flags.DO)
            if qname in self._secure and asks_ad:
                response.flags |= dns.flags.AD
        if rdatas:
            response.answer.append(dns.rrset.from_text_list(qname, 300, dns.rdataclass.IN, rdtype, rdatas))
        return response.to_wire()

    # -- serving ------------------------------------------------------------------------------

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        responder = self

        class Udp(socketserver.ThreadingUDPServer):
            address_family = family
            daemon_threads = True

        class Tcp(socketserver.ThreadingTCPServer):
            address_family = family
            daemon_threads = True
            allow_reuse_address = True

        class UdpHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = responder.answer(data)
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class TcpHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(5)
                try:
                    while True:
                        head = _read_exactly(conn, 2)
                        if head is None:
                            return
                        data = _read_exactly(conn, struct.unpack("!H", head)[0])
                        if data is None:
                            return
                        reply = responder.answer(data)
                        if reply is None:
                            return
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
                except OSError:
                    return

        for _attempt in range(20):  # UDP takes any free port; TCP must get the same one
            udp = Udp((self.host, 0), UdpHandler)
            port = udp.server_address[1]
            if not self.tcp:
                self._servers = [udp]
                break
            try:
                tcp = Tcp((self.host, port), TcpHandler)
            except OSError:
                udp.server_close()
                continue
            self._servers = [udp, tcp]
            break
        else:
            raise RuntimeError("no free port for both UDP and TCP")
        self.port = port
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []

    def __enter__(self) -> DnsResponder:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _read_exactly(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data
