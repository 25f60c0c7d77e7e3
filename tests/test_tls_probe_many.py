"""`jcsh tls probe` over several targets and `--mx DOMAIN`, through the CLI against loopback servers."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jcsh.runtime.sink import Sink, SinkConfig
from jcsh.runtime.tls.trust import protocol_version
from tests.support.cli import jcsh
from tests.support.dns import DnsResponder
from tests.support.https import PolicyServer
from tests.support.pki import TestCA
from tests.test_json_schema import validate

pytestmark = pytest.mark.timeout(40)

DOMAIN = "example.test"
POLICY = "/.well-known/mta-sts.txt"
ENFORCE = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmax_age: 86400\r\n"


@contextlib.contextmanager
def _sink(low: str | None = None, high: str | None = None, **kw: object) -> Iterator[Sink]:
    low_v = protocol_version(low) if low else None
    high_v = protocol_version(high) if high else None
    with Sink(SinkConfig(port=kw.pop("port", 0), mode="starttls", min_version=low_v, max_version=high_v, **kw)) as s:
        yield s


@contextlib.contextmanager
def _dead_port() -> Iterator[int]:
    """A port bound and never listened on: connections are refused, and no sink can take it meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def _spki_sha256(pem: bytes) -> str:
    key = x509.load_pem_x509_certificate(pem).public_key()
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def test_several_targets_at_once_equal_single_runs(home: Path) -> None:
    with _sink("TLSv1.2", "TLSv1.2") as old, _sink("TLSv1.3") as new:
        targets = [f"127.0.0.1:{old.port}", f"127.0.0.1:{new.port}"]
        both = jcsh(home, "--json", "tls", "probe", *targets, "--timeout", "5")
        singles = [jcsh(home, "--json", "tls", "probe", t, "--timeout", "5") for t in targets]
        human = jcsh(home, "tls", "probe", *targets, "--timeout", "5")
    assert both.code == 0, both.err
    docs = both.json["targets"]
    assert [d["port"] for d in docs] == [old.port, new.port]
    for doc, single in zip(docs, singles, strict=True):
        assert single.code == 0 and doc["exit_code"] == 0
        for key in ("protocols", "mode", "servername"):
            assert doc[key] == single.json[key]
        assert doc["certificate"]["trusted"] == single.json["certificate"]["trusted"]
        assert doc["negotiated"]["version"] == single.json["negotiated"]["version"]
    assert docs[0]["protocols"]["TLSv1.2"] and not docs[0]["protocols"]["TLSv1.3"]
    sections = human.out.split("\n\n")
    assert human.code == 0 and len(sections) == 2
    assert sections[0].startswith(f"127.0.0.1:{old.port}") and sections[1].startswith(f"127.0.0.1:{new.port}")


def test_a_failing_target_decides_the_exit_code_the_others_still_report(home: Path) -> None:
    with _dead_port() as dead, _sink() as good:
        ran = jcsh(home, "--json", "tls", "probe", f"127.0.0.1:{good.port}", f"127.0.0.1:{dead}", "--timeout", "3")
        human = jcsh(home, "tls", "probe", f"127.0.0.1:{dead}", f"127.0.0.1:{good.port}", "--timeout", "3")
    assert ran.code == 3
    ok, failed = ran.json["targets"]
    assert ok["exit_code"] == 0 and ok["protocols"]["TLSv1.3"] is True
    assert failed == {
        "host": "127.0.0.1",
        "port": dead,
        "exit_code": 3,
        "error": {"kind": "connect", "message": failed["error"]["message"]},
    }
    assert "refused" in failed["error"]["message"]
    assert human.code == 3 and f"127.0.0.1:{dead}  FAILED (exit 3)" in human.out and "TLSv1.3" in human.out


def test_bad_combinations_are_usage_errors(home: Path, tmp_path: Path) -> None:
    assert jcsh(home, "tls", "probe", "127.0.0.1:1", "--mx", DOMAIN).code == 2
    assert jcsh(home, "tls", "probe", "127.0.0.1:1", "--port", "25").code == 2
    assert jcsh(home, "tls", "probe", "127.0.0.1:1", "--truststore-password-stdin").code == 2
    with _dead_port() as dead:
        missing = jcsh(home, "tls", "probe", f"127.0.0.1:{dead}", "--truststore", str(tmp_path / "none.jks"))
    assert missing.code == 2 and "cannot read the trust store" in missing.err  # before any connection
    assert jcsh(home, "tls", "probe", "--mx", DOMAIN, "--port", "70000").code == 2


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("mx-ca"))


@pytest.fixture
def mx_world(ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DnsResponder, PolicyServer, int]]:
    """Two MX hosts (127.0.0.1 and 127.0.0.2, same port), a DNS responder, a policy server; the test CA trusted."""
    mx1 = ca.issue(["mx1.example.test"])
    mx2 = ca.issue(["mx2.example.test"])
    web_leaf = ca.issue([f"mta-sts.{DOMAIN}"])
    with _sink(cert_path=mx1.cert_path, key_path=mx1.key_path) as one:
        with _sink(host="127.0.0.2", port=one.port, cert_path=mx2.cert_path, key_path=mx2.key_path):
            with PolicyServer(web_leaf.chain_path, web_leaf.key_path) as web, DnsResponder() as dns:
                dns.add(DOMAIN, "MX", "20 mx2.example.test.", "10 mx1.example.test.")
                dns.add("mx1.example.test", "A", "127.0.0.1")
                dns.add("mx2.example.test", "A", "127.0.0.2")
                dns.add(f"mta-sts.{DOMAIN}", "A", "127.0.0.1")
                dns.txt(f"_mta-sts.{DOMAIN}", "v=STSv1; id=20260101T000000")
                dns.txt(f"_smtp._tls.{DOMAIN}", "v=TLSRPTv1; rua=mailto:tls@example.test")
                tlsa1 = f"_{one.port}._tcp.mx1.example.test"
                dns.add(tlsa1, "TLSA", f"3 1 1 {_spki_sha256(mx1.cert_pem)}").authenticated(tlsa1)
                dns.add(f"_{one.port}._tcp.mx2.example.test", "TLSA", f"3 1 1 {_spki_sha256(mx2.cert_pem)}")
                web.serve(POLICY, ENFORCE)
                monkeypatch.setenv("JCSH_NAMESERVERS", dns.address)
                monkeypatch.setenv("JCSH_MTA_STS_PORT", str(web.port))
                monkeypatch.setenv("SSL_CERT_FILE", str(ca.root_path))
                yield dns, web, one.port


def test_mx_probes_every_host_with_dane_and_mta_sts(
    home: Path, mx_world: tuple[DnsResponder, PolicyServer, int]
) -> None:
    dns, _, port = mx_world
    ran = jcsh(home, "--json", "tls", "probe", "--mx", DOMAIN, "--port", str(port), "--timeout", "5")
    human = jcsh(home, "tls", "probe", "--mx", DOMAIN, "--port", str(port), "--timeout", "5")
    assert ran.code == 0, ran.err
    doc = ran.json
    assert doc["domain"] == DOMAIN and set(doc) == {"domain", "hosts", "mta_sts", "tls_rpt"}
    validate("tls-probe", doc)
    first, second = doc["hosts"]
    assert (first["host"], first["preference"], first["addresses"]) == ("mx1.example.test", 10, ["127.0.0.1"])
    assert (second["host"], second["preference"], second["addresses"]) == ("mx2.example.test", 20, ["127.0.0.2"])
    for h in (first, second):
        assert h["exit_code"] == 0 and h["protocols"]["TLSv1.3"] is True
        assert h["certificate"]["trusted"] is True and h["servername"] == h["host"]
    assert first["dane"]["authenticated"] is True and first["dane"]["status"] == "verified"
    assert first["dane"]["records"][0]["matched"] is True
    assert second["dane"]["authenticated"] is False and second["dane"]["status"] == "does not apply"
    assert (first["mta_sts_covered"], second["mta_sts_covered"]) == (True, False)
    assert doc["mta_sts"]["mode"] == "enforce" and doc["mta_sts"]["mx"] == ["mx1.example.test"]
    assert doc["tls_rpt"]["rua"] == ["mailto:tls@example.test"]
    asked = dns.asked("A")  # every lookup through $JCSH_NAMESERVERS: the hosts and the policy host
    assert {"mx1.example.test", "mx2.example.test", f"mta-sts.{DOMAIN}"} <= {n.rstrip(".") for n in asked}
    text = human.out
    assert human.code == 0
    assert text.index("MX 10 mx1.example.test") < text.index("MX 20 mx2.example.test")
    assert "does not apply" in text and "mode enforce" in text and "NOT covered" in text


def test_mx_host_that_refuses_makes_the_exit_code(home: Path, mx_world: tuple[DnsResponder, PolicyServer, int]) -> None:
    del mx_world  # the DNS, policy and sinks are up; the probe goes to a port where nothing listens
    with _dead_port() as dead:
        ran = jcsh(home, "--json", "tls", "probe", "--mx", DOMAIN, "--port", str(dead), "--timeout", "3")
    assert ran.code == 3
    validate("tls-probe", ran.json)
    assert [h["exit_code"] for h in ran.json["hosts"]] == [3, 3]
    assert ran.json["hosts"][0]["error"]["kind"] == "connect"


def test_null_mx_is_exit_1_and_no_mx_means_the_domain_itself(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with DnsResponder() as dns, _sink() as sink:
        dns.null_mx("null.test")
        dns.add("implicit.test", "A", "127.0.0.1")
        monkeypatch.setenv("JCSH_NAMESERVERS", dns.address)
        null = jcsh(home, "tls", "probe", "--mx", "null.test")
        implicit = jcsh(
            home, "--json", "tls", "probe", "--mx", "implicit.test", "--port", str(sink.port), "--timeout", "5"
        )
    assert null.code == 1 and "null MX" in null.err
    assert implicit.code == 0, implicit.err
    assert [(h["host"], h["addresses"]) for h in implicit.json["hosts"]] == [("implicit.test", ["127.0.0.1"])]
    assert implicit.json["mta_sts"]["status"] == "absent"


def test_ciphers_per_target(home: Path) -> None:
    with _sink("TLSv1.3") as sink:
        ran = jcsh(home, "--json", "tls", "probe", f"127.0.0.1:{sink.port}", "--ciphers", "--timeout", "5")
    assert ran.code == 0, ran.err
    tls13 = ran.json["ciphers"]["versions"]["TLSv1.3"]
    assert "TLS_AES_256_GCM_SHA384" in tls13["accepted"], tls13
    assert "TLSv1.2" not in ran.json["ciphers"]["versions"]  # only versions the probe saw accepted


KEYTOOL = shutil.which("keytool")


@pytest.fixture(scope="module")
def stores(ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """keytool-built stores: one trusting the test CA (password changeit), one another CA (password s3cret)."""
    if KEYTOOL is None:
        pytest.skip("keytool (a JDK) is not installed: no real Java store to read")
    folder = tmp_path_factory.mktemp("stores")
    other = TestCA(folder / "other", name="Some Other Root")
    plan = {"with.jks": (ca.root_path, "JKS", "changeit"), "without.p12": (other.root_path, "PKCS12", "s3cret")}
    jobs = []
    for name, (root, kind, password) in plan.items():
        argv = [KEYTOOL, "-importcert", "-noprompt", "-alias", "ca", "-file", str(root)]
        argv += ["-keystore", str(folder / name), "-storetype", kind, "-storepass", password]
        jobs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for job in jobs:
        out, _ = job.communicate(timeout=50)
        assert job.returncode == 0, out
    return {name: folder / name for name in plan}


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_truststore_per_target(home: Path, ca: TestCA, stores: dict[str, Path]) -> None:
    leaf = ca.issue(["127.0.0.1"])
    with _sink(cert_path=leaf.cert_path, key_path=leaf.key_path) as sink:
        target = f"127.0.0.1:{sink.port}"
        good = jcsh(home, "--json", "tls", "probe", target, "--truststore", str(stores["with.jks"]), "--timeout", "5")
        bad = jcsh(
            home,
            "tls",
            "probe",
            target,
            "--truststore",
            str(stores["without.p12"]),
            "--truststore-password-stdin",
            "--timeout",
            "5",
            stdin="s3cret\n",
        )
        wrong = jcsh(home, "tls", "probe", target, "--truststore", str(stores["without.p12"]), "--timeout", "5")
    assert good.code == 0, good.err
    validate("tls-probe", good.json)
    assert good.json["truststore"]["file"] == str(stores["with.jks"]) and good.json["truststore"]["trusted"] is True
    assert bad.code == 0, bad.err  # a trust-store verdict is data, not the exit code
    assert "would NOT trust" in bad.out and "jcsh Test Root CA" in bad.out
    assert wrong.code == 2 and "s3cret" not in wrong.err and "changeit" not in wrong.err
