"""The --mx bench case's DNS responder and MTA-STS policy server, in a process of their own.

Run as `python -m bench.mx_world FOLDER`: issues the MX and policy-host certificates from a test
CA into FOLDER, prints `ready DNS_ADDRESS WEB_PORT`, reads the sinks' port from stdin, adds the
TLSA records for it, prints `ok`, and serves until stdin closes.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support.dns import DnsResponder
from tests.support.https import PolicyServer
from tests.support.pki import TestCA

DOMAIN = "bench.test"
HOSTS = ("mx1.bench.test", "mx2.bench.test")
POLICY = "version: STSv1\r\nmode: enforce\r\nmx: *.bench.test\r\nmax_age: 86400\r\n"


def _spki_sha256(pem: bytes) -> str:
    key = x509.load_pem_x509_certificate(pem).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def main() -> None:
    folder = Path(sys.argv[1])
    ca = TestCA(folder / "ca")
    leaves = [ca.issue([host]) for host in HOSTS]
    web_leaf = ca.issue([f"mta-sts.{DOMAIN}"])
    with PolicyServer(web_leaf.chain_path, web_leaf.key_path) as web, DnsResponder() as dns:
        web.serve("/.well-known/mta-sts.txt", POLICY)
        dns.add(DOMAIN, "MX", *(f"{10 * (i + 1)} {h}." for i, h in enumerate(HOSTS)))
        for i, host in enumerate(HOSTS):
            dns.add(host, "A", f"127.0.0.{i + 1}")
        dns.add(f"mta-sts.{DOMAIN}", "A", "127.0.0.1")
        dns.txt(f"_mta-sts.{DOMAIN}", "v=STSv1; id=1")
        dns.txt(f"_smtp._tls.{DOMAIN}", "v=TLSRPTv1; rua=mailto:tls@bench.test")
        paths = " ".join(f"{leaf.cert_path} {leaf.key_path}" for leaf in leaves)
        print(f"ready {dns.address} {web.port} {ca.root_path} {paths}", flush=True)
        port = int(sys.stdin.readline())
        for host, leaf in zip(HOSTS, leaves, strict=True):
            name = f"_{port}._tcp.{host}"
            dns.add(name, "TLSA", f"3 1 1 {_spki_sha256(leaf.cert_pem)}").authenticated(name)
        print("ok", flush=True)
        sys.stdin.read()  # until the harness closes it


if __name__ == "__main__":
    main()
