"""Java trust stores built by keytool (JKS and PKCS12), and whether a JVM using them would trust a chain."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from jcsh.runtime.errors import ExitStatus, UsageError
from jcsh.runtime.tls.checks.truststore import load_truststore, render_truststore, verify_chain
from tests.support.pki import TestCA

pytestmark = pytest.mark.timeout(60)

KEYTOOL = shutil.which("keytool")
_NO_KEYTOOL = "keytool (a JDK) is not installed: no real Java store to read"


def needs_keytool(test: Any) -> Any:
    """Real stores from keytool: a JVM starts per store (seconds), hence slow."""
    return pytest.mark.slow(pytest.mark.skipif(KEYTOOL is None, reason=_NO_KEYTOOL)(test))


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


class Stores:
    def __init__(self, folder: Path) -> None:
        self.ca = TestCA(folder / "ca")
        self.other = TestCA(folder / "other", name="Some Other Root")
        leaf = self.ca.issue(["mx.example.test"], via_intermediate=True)
        inter, _ = self.ca.intermediate()
        self.chain = [_der(leaf.cert_pem), inter.public_bytes(serialization.Encoding.DER)]
        self.files: dict[str, Path] = {}
        jobs = []
        # name: (store type, CA file, password, extra JVM options)
        plan = {
            "with.jks": ("JKS", self.ca.root_path, "changeit", []),
            "with.p12": ("PKCS12", self.ca.root_path, "changeit", []),
            "without.jks": ("JKS", self.other.root_path, "changeit", []),
            "without.p12": ("PKCS12", self.other.root_path, "s3cret pass", []),
            # as JDK 8-16 wrote them: certificates under 40-bit RC2
            "old.p12": (
                "PKCS12",
                self.ca.root_path,
                "changeit",
                ["-J-Dkeystore.pkcs12.certProtectionAlgorithm=PBEWithSHA1AndRC2_40"],
            ),
        }
        for name, (kind, ca_file, password, options) in plan.items():
            path = folder / name
            self.files[name] = path
            argv = [KEYTOOL or "keytool", *options, "-importcert", "-noprompt", "-alias", "scheduler-ca"]
            argv += ["-file", str(ca_file), "-keystore", str(path), "-storetype", kind, "-storepass", password]
            jobs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        for job in jobs:
            out, _ = job.communicate(timeout=50)
            assert job.returncode == 0, out


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    if KEYTOOL is None:
        pytest.skip(_NO_KEYTOOL)
    return Stores(tmp_path_factory.mktemp("stores"))


@needs_keytool
@pytest.mark.parametrize("name", ["with.jks", "with.p12", "old.p12"])
def test_store_with_the_ca_trusts_the_chain(stores: Stores, name: str) -> None:
    store = load_truststore(stores.files[name])  # no password: changeit
    assert [alias for alias, _ in store.entries] == ["scheduler-ca"]
    result = verify_chain(store, stores.chain)
    assert result.trusted is True
    assert result.to_json() == {
        "file": str(stores.files[name]),
        "trusted": True,
        "reason": f"the chain ends in trusted entry 'scheduler-ca' (CN=jcsh Test Root CA,O=jcsh tests) of {name}",
    }
    assert "JVM would trust" in render_truststore(result)[0]


@needs_keytool
def test_store_without_the_ca_names_the_missing_issuer(stores: Stores) -> None:
    result = verify_chain(load_truststore(stores.files["without.jks"]), stores.chain)
    assert result.trusted is False
    assert result.reason == "issuer CN=jcsh Test Root CA,O=jcsh tests is not in without.jks"
    line = render_truststore(result)[0]
    assert line.startswith("truststore the scheduler's JVM would NOT trust this server: issuer CN=jcsh Test Root CA")
    store = load_truststore(stores.files["without.p12"], "s3cret pass")
    assert verify_chain(store, stores.chain).trusted is False


@needs_keytool
def test_a_missing_intermediate_is_not_bridged(stores: Stores) -> None:
    result = verify_chain(load_truststore(stores.files["with.jks"]), stores.chain[:1])
    assert result.trusted is False and "Intermediate" in result.reason


@needs_keytool
def test_an_intermediate_entry_is_an_anchor_too(stores: Stores, tmp_path: Path) -> None:
    inter_pem = tmp_path / "inter.pem"
    inter_pem.write_bytes(stores.ca.intermediate()[0].public_bytes(serialization.Encoding.PEM))
    path = tmp_path / "inter.jks"
    argv = [KEYTOOL or "keytool", "-importcert", "-noprompt", "-alias", "inter", "-file", str(inter_pem)]
    subprocess.run(
        [*argv, "-keystore", str(path), "-storetype", "JKS", "-storepass", "changeit"],
        check=True,
        capture_output=True,
        timeout=50,
    )
    assert verify_chain(load_truststore(path), stores.chain).trusted is True


@needs_keytool
def test_expired_leaf_is_not_trusted(stores: Stores) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    result = verify_chain(load_truststore(stores.files["with.p12"]), stores.chain, now=later)
    assert result.trusted is False and "expired on" in result.reason


@needs_keytool
@pytest.mark.parametrize("name", ["with.jks", "without.p12", "old.p12"])
def test_wrong_password_is_a_usage_error(stores: Stores, name: str) -> None:
    with pytest.raises(UsageError, match="wrong password") as err:
        load_truststore(stores.files[name], "not-it")
    assert err.value.exit_code == ExitStatus.USAGE
    assert "not-it" not in err.value.message


def test_unreadable_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the trust store"):
        load_truststore(tmp_path / "missing.jks")
    garbage = tmp_path / "cacerts"
    garbage.write_bytes(b"\x1b[2Jnot a store at all")
    with pytest.raises(UsageError, match="neither a Java KeyStore"):
        load_truststore(garbage)
    damaged = tmp_path / "damaged.jks"
    damaged.write_bytes(b"\xfe\xed\xfe\xed\x00\x00\x00\x02\x00\x00\x00\x05")
    with pytest.raises(UsageError):
        load_truststore(damaged)


def test_pkcs12_without_java_trust_attribute_trusts_nothing(tmp_path: Path) -> None:
    # What `openssl pkcs12 -export -nokeys` makes: certificates a JVM lists as 0 entries.
    ca = TestCA(tmp_path)
    path = tmp_path / "openssl.p12"
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"ca", None, None, [ca.root], serialization.BestAvailableEncryption(b"changeit")
        )
    )
    store = load_truststore(path)
    assert store.entries == () and store.other_certificates == 1
    leaf = _der(ca.issue(["mx.example.test"]).cert_pem)
    result = verify_chain(store, [leaf])
    assert result.trusted is False and "without Java's trust attribute" in result.reason


def test_garbage_chain(tmp_path: Path) -> None:
    ca = TestCA(tmp_path)
    path = tmp_path / "java.p12"
    path.write_bytes(
        pkcs12.serialize_java_truststore([pkcs12.PKCS12Certificate(ca.root, b"ca")], serialization.NoEncryption())
    )
    store = load_truststore(path, "")
    assert verify_chain(store, [b"junk"]).reason == "the server's certificates cannot be decoded"
    assert verify_chain(store, []).trusted is False
