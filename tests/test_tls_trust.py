"""Trust: TrustPolicy, client_context and the probe's verdict for every kind of certificate."""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from jcsh.runtime.credentials import X509, CredentialStore
from jcsh.runtime.errors import ConfigError
from jcsh.runtime.mail.settings import load_settings
from jcsh.runtime.mail.trust import trust_policy
from jcsh.runtime.registry import Registry
from jcsh.runtime.sink import Sink, SinkConfig
from jcsh.runtime.tls.certinfo import hostname_matches, summarize
from jcsh.runtime.tls.probe import probe
from jcsh.runtime.tls.trust import TrustPolicy, client_context, explain_verify_error
from tests.support.cli import jcsh
from tests.support.pki import Issued, TestCA, self_signed


@contextlib.contextmanager
def _serving(cert: Path, key: Path, mode: str = "starttls") -> Iterator[Sink]:
    with Sink(SinkConfig(port=0, mode=mode, cert_path=cert, key_path=key)) as sink:
        yield sink


def _verdict(
    issued: Issued, policy: TrustPolicy, *, chain: bool = False, servername: str | None = None, host: str = "127.0.0.1"
) -> dict:
    with _serving(issued.chain_path if chain else issued.cert_path, issued.key_path) as sink:
        result = probe(host, sink.port, servername=servername, timeout=5, policy=policy)
    assert result.protocols["TLSv1.3"] is True  # a completed probe, whatever the verdict
    assert result.certificate is not None
    return result.certificate.to_json()


def _trusting(ca: TestCA, **kw: object) -> TrustPolicy:
    return TrustPolicy(extra_cas=(ca.root_pem.decode(),), **kw)


@pytest.mark.timeout(30)
def test_trusted_through_an_x509_credential(pki: TestCA) -> None:
    cert = _verdict(pki.issue(), _trusting(pki))
    assert (cert["trusted"], cert["verified"], cert["trust_error"]) == (True, True, None)
    assert cert["hostname_match"] is True
    assert cert["issuer"].startswith(f"CN={pki.name},")


@pytest.mark.timeout(30)
def test_same_certificate_untrusted_without_the_credential(pki: TestCA) -> None:
    cert = _verdict(pki.issue(), TrustPolicy())
    assert cert["trusted"] is False
    assert cert["trust_error"].startswith("untrusted issuer")
    assert pki.name in cert["trust_error"]


@pytest.mark.timeout(30)
def test_untrusted_issuer(pki: TestCA, other_ca: TestCA) -> None:
    cert = _verdict(other_ca.issue(), _trusting(pki))
    assert cert["trusted"] is False
    assert cert["trust_error"].startswith("untrusted issuer")
    assert other_ca.name in cert["trust_error"]


@pytest.mark.timeout(30)
def test_self_signed(tmp_path: Path, pki: TestCA) -> None:
    issued = self_signed(tmp_path)
    cert = _verdict(issued, _trusting(pki))
    assert cert["trusted"] is False and cert["trust_error"].startswith("self-signed")
    assert cert["self_signed"] is True
    # Trusting the certificate itself, as the product's X509_TrustedCertificate does, makes it trusted.
    cert = _verdict(issued, TrustPolicy(extra_cas=(issued.cert_pem.decode(),)))
    assert cert["trusted"] is True


@pytest.mark.timeout(30)
def test_expired(pki: TestCA) -> None:
    cert = _verdict(pki.issue(expired=True), _trusting(pki))
    assert cert["trusted"] is False and cert["trust_error"].startswith("expired")
    assert cert["days_left"] < 0


@pytest.mark.timeout(30)
def test_not_yet_valid(pki: TestCA) -> None:
    cert = _verdict(pki.issue(not_yet_valid=True), _trusting(pki))
    assert cert["trusted"] is False and cert["trust_error"].startswith("not yet valid")


@pytest.mark.timeout(30)
def test_wrong_host_name(pki: TestCA) -> None:
    issued = pki.issue(("mail.example.test",))
    cert = _verdict(issued, _trusting(pki))
    assert cert["hostname_match"] is False
    assert cert["trusted"] is False and cert["trust_error"].startswith("host name mismatch")
    assert "127.0.0.1" in cert["trust_error"]
    # ssl.checkserveridentity=false: the chain alone decides.
    cert = _verdict(issued, _trusting(pki, check_hostname=False))
    assert cert["trusted"] is True and cert["hostname_match"] is False
    # --servername: the name the certificate is checked against.
    cert = _verdict(issued, _trusting(pki), servername="mail.example.test")
    assert cert["trusted"] is True and cert["hostname_match"] is True


@pytest.mark.timeout(30)
def test_with_an_intermediate(pki: TestCA) -> None:
    issued = pki.issue(via_intermediate=True)
    cert = _verdict(issued, _trusting(pki), chain=True)
    assert cert["trusted"] is True
    assert len(cert["chain"]) == 2
    assert cert["chain"][1]["subject"].startswith(f"CN={pki.name} Intermediate,")
    # A server that forgets to send the intermediate: the verdict says which issuer is missing.
    cert = _verdict(issued, _trusting(pki), chain=False)
    assert cert["trusted"] is False and cert["trust_error"].startswith("untrusted issuer")
    assert len(cert["chain"]) == 1


@pytest.mark.timeout(30)
def test_dont_verify_and_ssl_trust_skip_verification(tmp_path: Path) -> None:
    issued = self_signed(tmp_path)
    for policy, reason in (
        (TrustPolicy(verify=False), "DontVerify"),
        (TrustPolicy(trust_hosts=("*",)), "ssl.trust=*"),
        (TrustPolicy(trust_hosts=("other.example.test", "127.0.0.1")), "ssl.trust lists 127.0.0.1"),
    ):
        cert = _verdict(issued, policy)
        assert cert["trusted"] is True and cert["trust_skipped"] == reason
        assert cert["verified"] is False and cert["trust_error"].startswith("self-signed")
    cert = _verdict(issued, TrustPolicy(trust_hosts=("other.example.test",)))
    assert cert["trusted"] is False and cert["trust_skipped"] is None


def test_skips_verification() -> None:
    assert TrustPolicy().skips_verification("h") is None
    assert TrustPolicy(verify=False).skips_verification("h") == "DontVerify"
    assert TrustPolicy(trust_hosts=("*",)).skips_verification("h") == "ssl.trust=*"
    assert TrustPolicy(trust_hosts=("H.example.test",)).skips_verification("h.example.test") is not None
    assert TrustPolicy(trust_hosts=("[::1]",)).skips_verification("::1") == "ssl.trust lists ::1"


def test_trust_policy_reads_the_registry_and_credentials(
    registry: Registry, credentials: CredentialStore, pki: TestCA
) -> None:
    for path, value in (
        ("/configuration/mail/Server", "smtp.example.test"),
        ("/configuration/mail/Transport", "smtp"),
        ("/configuration/mail/JavaMail/mail.smtp.ssl.trust", "a.example.test b.example.test"),
        ("/configuration/mail/JavaMail/mail.smtp.ssl.checkserveridentity", "false"),
        ("/configuration/mail/JavaMail/mail.smtp.ssl.protocols", "TLSv1.2 TLSv1.3"),
        ("/configuration/jcs/TLS/VerifyServerCertificateTrust", "DontVerify"),
    ):
        registry.set(path, value)
    if X509 not in credentials.protocols():
        credentials.add_protocol(X509)
    credentials.add(X509, "test-root", "default", certificate=pki.root_pem.decode())
    policy = trust_policy(load_settings(registry, credentials), credentials)
    assert policy == TrustPolicy(
        verify=False,
        check_hostname=False,
        trust_hosts=("a.example.test", "b.example.test"),
        protocols=("TLSv1.2", "TLSv1.3"),
        extra_cas=(pki.root_pem.decode(),),
    )


def test_defaults_from_empty_settings(registry: Registry, credentials: CredentialStore) -> None:
    policy = trust_policy(load_settings(registry, credentials), credentials)
    assert policy == TrustPolicy()


def test_client_context_follows_the_policy(pki: TestCA) -> None:
    ctx = client_context(TrustPolicy(), "h")
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    ctx = client_context(TrustPolicy(verify=False), "h")
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname
    ctx = client_context(TrustPolicy(check_hostname=False), "h")
    assert ctx.verify_mode == ssl.CERT_REQUIRED and not ctx.check_hostname
    ctx = client_context(TrustPolicy(protocols=("TLSv1.2",)), "h")
    assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_2
    before = client_context(TrustPolicy(), "h").cert_store_stats()["x509_ca"]
    after = client_context(_trusting(pki), "h").cert_store_stats()["x509_ca"]
    assert after == before + 1
    with pytest.raises(ConfigError):
        client_context(TrustPolicy(extra_cas=("not a certificate",)), "h")
    with pytest.raises(ConfigError):
        client_context(TrustPolicy(protocols=("TLSv9",)), "h")


@pytest.mark.timeout(30)
def test_client_context_can_speak_tls1_when_the_policy_asks(pki: TestCA) -> None:
    """TLSv1 in ssl.protocols means security level 0 on our side too, or OpenSSL 3 cannot."""
    from jcsh.runtime.tls.protocols import supported_protocols

    if "TLSv1" not in supported_protocols().names:
        pytest.skip("TLS 1.0 not available here")
    issued = pki.issue()
    v1 = ssl.TLSVersion.TLSv1
    with Sink(
        SinkConfig(
            port=0,
            mode="implicit",
            cert_path=issued.cert_path,
            key_path=issued.key_path,
            min_version=v1,
            max_version=v1,
        )
    ) as sink:
        ctx = client_context(_trusting(pki, protocols=("TLSv1",)), "localhost")
        with (
            socket.create_connection((sink.host, sink.port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.version() == "TLSv1"


@pytest.mark.timeout(30)
def test_explain_verify_error_from_a_real_handshake(tmp_path: Path) -> None:
    issued = self_signed(tmp_path)
    with _serving(issued.cert_path, issued.key_path, mode="implicit") as sink:
        ctx = client_context(TrustPolicy(), "localhost")
        with (
            pytest.raises(ssl.SSLCertVerificationError) as info,
            socket.create_connection((sink.host, sink.port), timeout=5) as raw,
        ):
            ctx.wrap_socket(raw, server_hostname="localhost")
    der = ssl.PEM_cert_to_DER_cert(issued.cert_pem.decode())
    text = explain_verify_error(info.value, der)
    assert text.startswith("self-signed") and "CN=localhost" in text
    assert explain_verify_error(info.value, None).startswith("self-signed")


@pytest.mark.timeout(30)
def test_probe_uses_the_configured_trust(home: Path, pki: TestCA) -> None:
    issued = pki.issue()
    pem = home.parent / "root.pem"
    pem.write_bytes(pki.root_pem)
    with _serving(issued.cert_path, issued.key_path) as sink:
        target = f"127.0.0.1:{sink.port}"
        before = jcsh(home, "tls", "probe", target, "--json")
        assert jcsh(home, "credential", "protocol", "add", X509).code in (0, 1)
        added = jcsh(
            home,
            "credential",
            "add",
            "--protocol",
            X509,
            "--endpoint",
            "test-root",
            "--virtual-user",
            "default",
            "--certificate",
            str(pem),
        )
        after = jcsh(home, "tls", "probe", target, "--json")
    assert before.code == 0 and before.json["certificate"]["trusted"] is False
    assert added.code == 0, added.err
    assert after.code == 0 and after.json["certificate"]["trusted"] is True


def test_summarize_and_hostname_matching(pki: TestCA) -> None:
    issued = pki.issue(("*.example.test", "mail.example.test", "127.0.0.1"))
    der = ssl.PEM_cert_to_DER_cert(issued.cert_pem.decode())
    info = summarize(der)
    assert info["sans"] == ["*.example.test", "mail.example.test", "127.0.0.1"]
    assert info["key_type"] == "EC secp256r1" and info["key_size"] == 256
    assert info["signature_algorithm"] == "ecdsa-with-SHA256"
    assert len(info["sha256"].split(":")) == 32
    assert 0 < info["days_left"] <= 3660
    assert hostname_matches(der, "smtp.example.test")
    assert hostname_matches(der, "MAIL.example.test.")
    assert not hostname_matches(der, "a.b.example.test")
    assert not hostname_matches(der, "example.test")
    assert hostname_matches(der, "127.0.0.1") and not hostname_matches(der, "127.0.0.2")
    assert not hostname_matches(der, "[::1]")
    with pytest.raises(ValueError):
        summarize(b"junk")


@pytest.mark.timeout(30)
def test_an_old_server_still_gets_a_trust_verdict(pki: TestCA) -> None:
    """A verifying client offers TLS 1.2+ by default; the verdict must not depend on that."""
    from jcsh.runtime.tls.protocols import supported_protocols

    if "TLSv1.1" not in supported_protocols().names:
        pytest.skip("TLS 1.1 not available here")
    issued = pki.issue()
    v11 = ssl.TLSVersion.TLSv1_1
    with Sink(
        SinkConfig(
            port=0,
            mode="starttls",
            cert_path=issued.cert_path,
            key_path=issued.key_path,
            min_version=v11,
            max_version=v11,
        )
    ) as sink:
        default = probe("127.0.0.1", sink.port, timeout=5, policy=_trusting(pki))
        allowing = probe("127.0.0.1", sink.port, timeout=5, policy=_trusting(pki, protocols=("TLSv1.1", "TLSv1.2")))
    assert default.protocols == {"TLSv1": False, "TLSv1.1": True, "TLSv1.2": False, "TLSv1.3": False}
    assert default.certificate.trusted is True
    assert default.policy["usable_protocols"] == []  # sending with library defaults would fail
    assert allowing.policy["usable_protocols"] == ["TLSv1.1"]


def _system_trust_folder(tmp_path: Path, ca: TestCA, *, hashed: bool, bundle_inside: bool) -> tuple[Path, Path]:
    """A stand-in for the system's CA folder and bundle, holding only `ca`."""
    import shutil
    import subprocess

    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / "test-root.pem").write_bytes(ca.root_pem)
    if hashed:
        if shutil.which("openssl") is None:
            pytest.skip("openssl is needed to hash a CA folder")
        subprocess.run(["openssl", "rehash", str(folder)], check=True)
    bundle = (folder if bundle_inside else tmp_path) / "ca-certificates.crt"
    bundle.write_bytes(ca.root_pem)
    return folder, bundle


def _handshake_verifies(sink: Sink) -> bool:
    ctx = client_context(TrustPolicy(), "localhost")
    with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.version() is not None


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("hashed", "bundle_inside"), [(True, True), (False, True), (True, False)])
def test_system_trust_from_folder_or_bundle(
    pki: TestCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hashed: bool, bundle_inside: bool
) -> None:
    from jcsh.runtime.tls.trust import _hashed_system_folder

    folder, bundle = _system_trust_folder(tmp_path, pki, hashed=hashed, bundle_inside=bundle_inside)
    monkeypatch.setenv("SSL_CERT_DIR", str(folder))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    # The hashed folder replaces the bundle only when the bundle is generated inside it.
    assert _hashed_system_folder() == (str(folder.resolve()) if hashed and bundle_inside else None)
    leaf = pki.issue(("localhost",))
    with _serving(leaf.cert_path, leaf.key_path, mode="implicit") as sink:
        assert _handshake_verifies(sink)


@pytest.mark.timeout(30)
def test_system_trust_does_not_trust_an_unknown_ca(
    pki: TestCA, other_ca: TestCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, bundle = _system_trust_folder(tmp_path, pki, hashed=True, bundle_inside=True)
    monkeypatch.setenv("SSL_CERT_DIR", str(folder))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    leaf = other_ca.issue(("localhost",))
    with _serving(leaf.cert_path, leaf.key_path, mode="implicit") as sink:
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake_verifies(sink)
