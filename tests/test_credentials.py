"""Credentials: protocols, identities, secrets encrypted at rest and never shown, key handling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jcsh.runtime.credentials import CredentialStore, Secret
from jcsh.runtime.errors import StoreError, UsageError
from jcsh.runtime.registry import open_registry
from tests.support.cli import jcsh, jcsh_process
from tests.support.pki import TestCA, self_signed

PASSWORD = "s3cret-Pa55word-Ünïcode"
SMTP_ID = ("--protocol", "smtp", "--endpoint", "smtp.example.test", "--virtual-user", "default")


def _add_smtp(home: Path, *extra: str, password: str = PASSWORD):
    return jcsh(
        home, "credential", "add", *SMTP_ID, "--real-user", "bob", "--password-stdin", *extra, stdin=password + "\n"
    )


def test_protocol_must_exist_first(home: Path) -> None:
    ran = _add_smtp(home)
    assert ran.code == 2
    assert "protocol 'smtp' does not exist; create it with `jcsh credential protocol add smtp`" in ran.err
    assert jcsh(home, "--json", "credential", "ls").json == {"credentials": []}


def test_protocols_are_case_sensitive_and_listed(home: Path) -> None:
    assert jcsh(home, "credential", "protocol", "add", "SMTP").code == 0
    assert _add_smtp(home).code == 2  # "smtp" is not "SMTP"
    assert jcsh(home, "credential", "protocol", "add", "smtp").code == 0
    assert jcsh(home, "credential", "protocol", "ls").out.split() == ["SMTP", "smtp"]
    assert jcsh(home, "credential", "protocol", "add", "smtp").code == 2  # already exists


def test_add_list_remove(home: Path) -> None:
    jcsh(home, "credential", "protocol", "add", "smtp")
    added = _add_smtp(home)
    assert added.code == 0 and "stored smtp smtp.example.test default" in added.out
    listed = jcsh(home, "--json", "credential", "ls").json["credentials"]
    assert listed == [
        {
            "protocol": "smtp",
            "endpoint": "smtp.example.test",
            "virtual_user": "default",
            "real_user": "bob",
            "kind": "password",
            "has_secret": True,
            "has_certificate": False,
            "allow_plaintext": False,
            "oauth2": None,
        }
    ]
    assert "bob" in jcsh(home, "credential", "ls").out
    refused = jcsh(home, "credential", "protocol", "rm", "smtp")
    assert refused.code == 2 and "used by 1 credential" in refused.err
    assert jcsh(home, "credential", "rm", *SMTP_ID).code == 0
    assert jcsh(home, "credential", "rm", *SMTP_ID).code == 1
    assert jcsh(home, "credential", "protocol", "rm", "smtp").code == 0


def test_same_identity_needs_replace(home: Path, credentials: CredentialStore) -> None:
    jcsh(home, "credential", "protocol", "add", "smtp")
    _add_smtp(home)
    again = _add_smtp(home, password="other")
    assert again.code == 2 and "--replace" in again.err
    assert credentials.secret(credentials.find("smtp", "smtp.example.test", "default")).reveal() == PASSWORD
    assert _add_smtp(home, "--replace", password="other").code == 0
    assert credentials.secret(credentials.find("smtp", "smtp.example.test", "default")).reveal() == "other"


def test_find_is_exact_and_case_sensitive(home: Path, credentials: CredentialStore) -> None:
    credentials.add_protocol("smtp")
    credentials.add("smtp", "smtp.example.test", "default", real_user="bob", secret=PASSWORD)
    assert credentials.find("smtp", "smtp.example.test", "default") is not None
    assert credentials.find("smtp", "SMTP.example.test", "default") is None
    assert credentials.find("smtp", "smtp.example.test", "Default") is None
    assert credentials.find("Smtp", "smtp.example.test", "default") is None


@pytest.mark.parametrize(
    ("args", "stdin", "why"),
    [
        (("--endpoint", "", "--virtual-user", "default"), PASSWORD, "endpoint is required"),
        (("--endpoint", "a\nb", "--virtual-user", "default"), PASSWORD, "control character"),
        (("--endpoint", "e", "--virtual-user", " default"), PASSWORD, "leading or trailing spaces"),
        (("--endpoint", "e" * 300, "--virtual-user", "default"), PASSWORD, "the limit is 255"),
        (("--endpoint", "e", "--virtual-user", "default"), "", "the password is empty"),
    ],
)
def test_bad_credential_input(home: Path, args: tuple[str, ...], stdin: str, why: str) -> None:
    jcsh(home, "credential", "protocol", "add", "smtp")
    ran = jcsh(home, "credential", "add", "--protocol", "smtp", *args, "--password-stdin", stdin=stdin)
    assert ran.code == 2 and why in ran.err
    assert jcsh(home, "--json", "credential", "ls").json == {"credentials": []}


def test_password_is_never_an_argument_and_needs_a_terminal(home: Path) -> None:
    jcsh(home, "credential", "protocol", "add", "smtp")
    assert jcsh(home, "credential", "add", *SMTP_ID, "--password", "x").code == 2
    ran = jcsh(home, "credential", "add", *SMTP_ID)  # stdin is not a terminal here
    assert ran.code == 2 and "--password-stdin" in ran.err


def test_secret_never_in_database_outputs_or_repr(home: Path) -> None:
    outputs = [
        jcsh(home, "credential", "protocol", "add", "smtp"),
        _add_smtp(home),
        jcsh(home, "credential", "ls"),
        jcsh(home, "--json", "credential", "ls"),
        jcsh(home, "registry", "export"),
        jcsh(home, "credential", "rekey"),
    ]
    needle = PASSWORD.encode()
    for ran in outputs:
        assert PASSWORD not in ran.out + ran.err
    for f in home.iterdir():
        assert needle not in f.read_bytes(), f
    store = CredentialStore(open_registry(home), home)
    cred = store.find("smtp", "smtp.example.test", "default")
    secret = store.secret(cred)
    assert PASSWORD not in repr(cred) + repr(secret) + str(secret) + repr(store)
    assert secret.reveal() == PASSWORD
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)


def test_key_file_is_0600_and_home_0700(home: Path) -> None:
    jcsh(home, "credential", "protocol", "add", "smtp")
    _add_smtp(home)
    assert (home / "secret.key").stat().st_mode & 0o777 == 0o600
    assert home.stat().st_mode & 0o777 == 0o700


def test_missing_key_is_a_clear_error_and_nothing_is_overwritten(home: Path) -> None:
    jcsh(home, "credential", "protocol", "add", "smtp")
    _add_smtp(home)
    key = home / "secret.key"
    saved = key.read_bytes()
    key.unlink()
    ran = _add_smtp(home, "--replace", password="new")
    assert ran.code == 74 and "secret.key is missing" in ran.err
    assert not key.exists()
    key.write_bytes(saved)
    store = CredentialStore(open_registry(home), home)
    assert store.secret(store.find("smtp", "smtp.example.test", "default")).reveal() == PASSWORD


def test_wrong_key_is_refused(home: Path) -> None:
    jcsh(home, "credential", "protocol", "add", "smtp")
    _add_smtp(home)
    from cryptography.fernet import Fernet

    (home / "secret.key").write_bytes(Fernet.generate_key())
    ran = _add_smtp(home, "--replace", password="new")
    assert ran.code == 74 and "does not match" in ran.err
    (home / "secret.key").write_text("garbage")
    with pytest.raises(StoreError, match="not a valid key"):
        store = CredentialStore(open_registry(home), home)
        store.secret(store.find("smtp", "smtp.example.test", "default"))


def test_rekey_keeps_every_secret(home: Path, credentials: CredentialStore) -> None:
    credentials.add_protocol("smtp")
    for i in range(5):
        credentials.add("smtp", f"host{i}.example.test", "default", secret=f"pw{i}")
    old_key = (home / "secret.key").read_bytes()
    ran = jcsh(home, "--json", "credential", "rekey")
    assert ran.json == {"rekeyed": 5}
    assert (home / "secret.key").read_bytes() != old_key
    assert not (home / "secret.key.old").exists() and not (home / "secret.key.new").exists()
    fresh = CredentialStore(open_registry(home), home)
    for i in range(5):
        assert fresh.secret(fresh.find("smtp", f"host{i}.example.test", "default")).reveal() == f"pw{i}"


def test_interrupted_rekey_is_finished_on_next_open(home: Path, credentials: CredentialStore) -> None:
    credentials.add_protocol("smtp")
    credentials.add("smtp", "h.example.test", "default", secret="pw")
    old = (home / "secret.key").read_bytes()
    credentials.rekey()
    new = (home / "secret.key").read_bytes()
    # As if the process stopped after the commit but before the renames.
    (home / "secret.key.new").write_bytes(new)
    (home / "secret.key").write_bytes(old)
    fresh = CredentialStore(open_registry(home), home)
    assert fresh.secret(fresh.find("smtp", "h.example.test", "default")).reveal() == "pw"
    assert (home / "secret.key").read_bytes() == new


def test_x509_certificate_credential(home: Path, pki: TestCA, tmp_path: Path) -> None:
    jcsh(home, "credential", "protocol", "add", "X509_TrustedCertificate")
    args = (
        "credential",
        "add",
        "--protocol",
        "X509_TrustedCertificate",
        "--endpoint",
        "corp-root",
        "--virtual-user",
        "default",
    )
    ran = jcsh(home, "--json", *args, "--certificate", str(pki.root_path))
    assert ran.code == 0 and "jcsh Test Root CA" in ran.json["subject"]
    store = CredentialStore(open_registry(home), home)
    [cert] = store.trusted_certificates()
    assert cert.certificate.startswith("-----BEGIN CERTIFICATE-----") and cert.real_user is None
    leaf = self_signed(tmp_path)
    assert jcsh(home, *args, "--certificate", str(leaf.cert_path)).code == 2  # same identity
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    refused = jcsh(home, *args, "--certificate", str(bad), "--replace")
    assert refused.code == 2 and "not a PEM X.509 certificate" in refused.err
    assert jcsh(home, *args, "--certificate", str(tmp_path / "missing.pem")).code == 2
    assert jcsh(home, *args, "--password-stdin", stdin="x").code == 2
    assert jcsh(home, "credential", "add", *SMTP_ID, "--certificate", str(pki.root_path)).code == 2


def test_api_refuses_secret_for_x509_and_cert_for_smtp(credentials: CredentialStore, pki: TestCA) -> None:
    credentials.add_protocol("X509_TrustedCertificate")
    credentials.add_protocol("smtp")
    with pytest.raises(UsageError):
        credentials.add("X509_TrustedCertificate", "e", "default", secret="x")
    with pytest.raises(UsageError):
        credentials.add("smtp", "e", "default", certificate=pki.root_pem.decode())
    assert repr(Secret("hidden")) == "Secret(<redacted>)"


def test_real_process_stores_secret_with_private_key_file(home: Path) -> None:
    jcsh(home, "credential", "protocol", "add", "smtp")
    first = jcsh_process(home, "credential", "add", *SMTP_ID, "--password-stdin", stdin="pw1\n")
    assert first.code == 0
    assert os.stat(home / "secret.key").st_mode & 0o777 == 0o600
