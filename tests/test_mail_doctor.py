"""The mail doctor: every trap it must report, with level, keys and fix; exit codes of `jcsh mail doctor`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from jcsh.runtime.credentials import X509, CredentialStore
from jcsh.runtime.mail.doctor import Finding, diagnose
from jcsh.runtime.mail.settings import MAIL, VERIFY_KEY
from jcsh.runtime.registry import Registry
from tests.support.cli import jcsh
from tests.support.pki import TestCA, self_signed

J = f"{MAIL}/JavaMail"
SERVER = "smtp.example.test"


def setup(registry: Registry, entries: dict[str, str], base: bool = True) -> None:
    """A working configuration (unless base=False) plus entries."""
    defaults = (
        {
            f"{MAIL}/Server": SERVER,
            f"{MAIL}/Transport": "smtp",
            f"{MAIL}/From": "ops@example.test",
            f"{J}/mail.smtp.starttls.required": "true",
        }
        if base
        else {}
    )
    for path, value in {**defaults, **entries}.items():
        registry.set(path, value)


def login(
    credentials: CredentialStore,
    endpoint: str = SERVER,
    virtual_user: str = "default",
    protocol: str = "smtp",
    real_user: str | None = "ops",
) -> None:
    if protocol not in credentials.protocols():
        credentials.add_protocol(protocol)
    credentials.add(protocol, endpoint, virtual_user, real_user=real_user, secret="s3cret-never-shown")


def find(findings: list[Finding], level: str, words: str) -> Finding:
    hits = [f for f in findings if f.level == level and words in f.message]
    assert hits, f"no {level} with {words!r} in {[(f.level, f.message) for f in findings]}"
    return hits[0]


def test_a_sound_configuration_has_no_findings(
    registry: Registry, credentials: CredentialStore, tmp_path: Path
) -> None:
    login(credentials)
    setup(registry, {})
    assert diagnose(registry, credentials, cwd=tmp_path) == []


ERRORS = [
    # entries (on top of the working base), words of the error, keys it must name
    ({f"{MAIL}/Transport": "imap"}, "is not a transport", [f"{MAIL}/Transport"]),
    (
        {f"{MAIL}/Transport": "smtps", f"{J}/mail.smtp.starttls.enabled": "true"},
        "smtps, which reads only mail.smtps.* properties",
        [f"{J}/mail.smtp.starttls.enabled", f"{MAIL}/Transport"],
    ),
    (
        {f"{MAIL}/ConnectionSecurity": "TLS", f"{MAIL}/Port": "587"},
        "implicit TLS on port 587",
        [f"{MAIL}/ConnectionSecurity", f"{MAIL}/Port"],
    ),
    (
        {f"{MAIL}/Port": "465"},
        "security STARTTLSRequired on port 465",
        [f"{J}/mail.smtp.starttls.required", f"{MAIL}/Port"],
    ),
    (
        {
            f"{J}/mail.smtp.port": "465",
            f"{J}/mail.smtp.starttls.required": "false",
            f"{J}/mail.smtp.starttls.enable": "true",
        },
        "security STARTTLS on port 465",
        [f"{J}/mail.smtp.starttls.enable", f"{J}/mail.smtp.port"],
    ),
    (
        {f"{MAIL}/SendPartial": "sometimes"},
        f"{MAIL}/SendPartial = 'sometimes' is not a boolean",
        [f"{MAIL}/SendPartial"],
    ),
    ({f"{J}/mail.smtp.timeout": "0"}, "would wait forever", [f"{J}/mail.smtp.timeout"]),
]


@pytest.mark.parametrize(("entries", "words", "keys"), ERRORS)
def test_errors(
    registry: Registry,
    credentials: CredentialStore,
    tmp_path: Path,
    entries: dict[str, str],
    words: str,
    keys: list[str],
) -> None:
    login(credentials)
    setup(registry, entries)
    finding = find(diagnose(registry, credentials, cwd=tmp_path), "error", words)
    assert list(finding.keys) == keys
    assert finding.fix


def test_missing_transport_and_server_are_errors(
    registry: Registry, credentials: CredentialStore, tmp_path: Path
) -> None:
    findings = diagnose(registry, credentials, cwd=tmp_path)
    assert find(findings, "error", "Transport is not set").keys == (f"{MAIL}/Transport",)
    assert find(findings, "error", "no mail server is configured").fix.startswith("jcsh configure")
    assert [f.level for f in findings] == sorted((f.level for f in findings), key=("error", "warning", "note").index)


def test_smtps_starttls_flag_is_reported_once_as_an_error(
    registry: Registry, credentials: CredentialStore, tmp_path: Path
) -> None:
    setup(registry, {f"{MAIL}/Transport": "smtps"})
    findings = diagnose(registry, credentials, cwd=tmp_path)
    about = [f for f in findings if f"{J}/mail.smtp.starttls.required" in f.keys]
    assert [f.level for f in about] == ["error"]


WARNINGS = [
    ({f"{J}/mail.smtp.host": "other.example.test"}, "warning", "has no effect", f"{J}/mail.smtp.host"),
    ({VERIFY_KEY: "DontVerify"}, "warning", "DontVerify", VERIFY_KEY),
    ({f"{J}/mail.smtp.ssl.trust": "*"}, "warning", "is '*'", f"{J}/mail.smtp.ssl.trust"),
    (
        {f"{J}/mail.smtp.ssl.trust": "a.test b.test"},
        "note",
        "a.test b.test are accepted unverified",
        f"{J}/mail.smtp.ssl.trust",
    ),
    (
        {f"{J}/mail.smtp.ssl.checkserveridentity": "false"},
        "warning",
        "not checked against its host name",
        f"{J}/mail.smtp.ssl.checkserveridentity",
    ),
    ({f"{J}/mail.smtp.ssl.protocols": "TLSv1 TLSv1.2"}, "warning", "deprecated", f"{J}/mail.smtp.ssl.protocols"),
    ({f"{J}/mail.smtp.debugging": "true"}, "warning", "unknown JavaMail property", f"{J}/mail.smtp.debugging"),
    (
        {f"{MAIL}/AccessiblePath": "/nonexistent/jcsh-attachments"},
        "warning",
        "does not exist",
        f"{MAIL}/AccessiblePath",
    ),
    (
        {f"{MAIL}/From": "ops@elsewhere.test"},
        "note",
        "From's domain elsewhere.test is not the server's",
        f"{MAIL}/From",
    ),
    (
        {f"{J}/mail.smtp.starttls.required": "false", f"{J}/mail.smtp.starttls.enable": "true"},
        "note",
        "STARTTLS is opportunistic",
        f"{J}/mail.smtp.starttls.enable",
    ),
    (
        {f"{MAIL}/ConnectionSecurity": "None"},
        "warning",
        "password would travel in plain text",
        f"{MAIL}/ConnectionSecurity",
    ),
    (
        {f"{MAIL}/Port": "465", f"{MAIL}/ConnectionSecurity": "TLS", f"{MAIL}/smtp.old.test/Port": "25"},
        "note",
        f"{MAIL}/smtp.old.test do not apply",
        f"{MAIL}/smtp.old.test",
    ),
]


@pytest.mark.parametrize(("entries", "level", "words", "key"), WARNINGS)
def test_warnings_and_notes(
    registry: Registry,
    credentials: CredentialStore,
    tmp_path: Path,
    entries: dict[str, str],
    level: str,
    words: str,
    key: str,
) -> None:
    login(credentials)
    setup(registry, entries)
    findings = diagnose(registry, credentials, cwd=tmp_path)
    assert key in find(findings, level, words).keys
    assert not [f for f in findings if f.level == "error"]


def test_accessible_path_that_is_a_file(registry: Registry, credentials: CredentialStore, tmp_path: Path) -> None:
    login(credentials)
    (tmp_path / "file").write_text("x")
    setup(registry, {f"{MAIL}/AccessiblePath": str(tmp_path / "file")})
    find(diagnose(registry, credentials, cwd=tmp_path), "warning", "is not a folder")


LOGIN_CASES = [
    # credential (endpoint, virtual user, protocol), level, words
    (None, "note", "there is no smtp credential protocol"),
    ((SERVER, "ops", "smtp"), "warning", "virtual user is 'ops', not 'default'"),
    (("SMTP.Example.test", "default", "smtp"), "warning", "differs from the Server 'smtp.example.test' in case"),
    ((SERVER, "default", "SMTP"), "warning", "protocol 'SMTP' is not 'smtp'"),
    (("other.example.test", "default", "smtp"), "note", "no smtp credential has endpoint smtp.example.test"),
]


@pytest.mark.parametrize(("cred", "level", "words"), LOGIN_CASES)
def test_credential_near_misses(
    registry: Registry,
    credentials: CredentialStore,
    tmp_path: Path,
    cred: tuple[str, str, str] | None,
    level: str,
    words: str,
) -> None:
    if cred:
        login(credentials, endpoint=cred[0], virtual_user=cred[1], protocol=cred[2])
    setup(registry, {})
    find(diagnose(registry, credentials, cwd=tmp_path), level, words)


def test_user_without_credential_is_a_warning(registry: Registry, credentials: CredentialStore, tmp_path: Path) -> None:
    setup(registry, {f"{MAIL}/User": "ops"})
    finding = find(diagnose(registry, credentials, cwd=tmp_path), "warning", "no password for it")
    assert f"{MAIL}/User" in finding.keys


def test_credential_without_login_name(registry: Registry, credentials: CredentialStore, tmp_path: Path) -> None:
    login(credentials, real_user=None)
    setup(registry, {})
    find(diagnose(registry, credentials, cwd=tmp_path), "warning", "there is no login name")


@pytest.mark.timeout(30)
def test_expired_trusted_certificates(
    registry: Registry, credentials: CredentialStore, tmp_path: Path, pki: TestCA
) -> None:
    login(credentials)
    setup(registry, {})
    credentials.add_protocol(X509)
    expired = self_signed(tmp_path, expired=True)
    credentials.add(X509, "old-self-signed", "default", certificate=expired.cert_pem.decode())
    credentials.add(X509, "root", "default", certificate=pki.root_pem.decode())
    findings = diagnose(registry, credentials, cwd=tmp_path)
    finding = find(findings, "warning", "expired on")
    assert finding.keys == (f"credential {X509} old-self-signed default",)
    assert not [f for f in findings if "root" in " ".join(f.keys)]


def test_cli_exit_codes_and_json(home: Path, registry: Registry, credentials: CredentialStore) -> None:
    login(credentials)
    setup(registry, {VERIFY_KEY: "DontVerify"})
    ran = jcsh(home, "mail", "doctor")
    assert ran.code == 0  # a warning alone
    assert "warning: " in ran.out and "fix:" in ran.out and "s3cret" not in ran.out
    registry.set(f"{MAIL}/Port", "465")
    ran = jcsh(home, "mail", "doctor", "--json")
    assert ran.code == 1
    data = ran.json
    assert isinstance(data, dict) and data["ok"] is False and data["counts"]["error"] == 1
    assert set(data["findings"][0]) == {"level", "keys", "message", "fix"}
    assert data["findings"][0]["level"] == "error"


def test_cli_clean_configuration(home: Path, registry: Registry, credentials: CredentialStore) -> None:
    login(credentials)
    setup(registry, {})
    ran = jcsh(home, "mail", "doctor")
    assert (ran.code, ran.out) == (0, "no problems found\n")


# -- provider rules (issue 14) ---------------------------------------------------------------------

JAN_2027 = dt.datetime(2027, 1, 15, tzinfo=dt.UTC)
DEC_2026 = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)


@pytest.mark.parametrize("server", ["smtp.office365.com", "SMTP-legacy.office365.com."])
def test_exchange_online_with_a_password_warns_of_basic_auth_retirement(
    registry: Registry, credentials: CredentialStore, tmp_path: Path, server: str
) -> None:
    login(credentials, endpoint=server, real_user="jobs@contoso.example")
    setup(registry, {f"{MAIL}/Server": server})
    before = find(diagnose(registry, credentials, cwd=tmp_path, now=DEC_2026), "warning", "Exchange Online disables")
    assert "end of December 2026" in before.message and "550 5.7.30" in before.message
    assert f"credential smtp {server} default" in before.keys
    assert "jcsh credential add --protocol smtp" in before.fix and "--oauth2 client-credentials" in before.fix
    assert "--real-user jobs@contoso.example" in before.fix
    after = find(diagnose(registry, credentials, cwd=tmp_path, now=JAN_2027), "warning", "has disabled Basic auth")
    assert "since the end of December 2026" in after.message


def test_exchange_online_without_a_password_login_gets_no_basic_auth_warning(
    registry: Registry, credentials: CredentialStore, tmp_path: Path
) -> None:
    login(credentials, endpoint="smtp.office365.com")
    setup(registry, {f"{MAIL}/Server": "smtp.office365.com", f"{J}/mail.smtp.auth": "false"})
    assert not [f for f in diagnose(registry, credentials, cwd=tmp_path) if "Basic auth" in f.message]


def test_gmail_with_a_password_gets_the_app_password_note(
    registry: Registry, credentials: CredentialStore, tmp_path: Path
) -> None:
    login(credentials, endpoint="smtp.gmail.com")
    setup(registry, {f"{MAIL}/Server": "smtp.gmail.com"})
    note = find(diagnose(registry, credentials, cwd=tmp_path), "note", "app password")
    assert "App passwords" in note.fix


def test_direct_send_notes_that_only_tenant_recipients_are_accepted(
    registry: Registry, credentials: CredentialStore, tmp_path: Path
) -> None:
    host = "contoso-example.mail.protection.outlook.com"
    setup(registry, {f"{MAIL}/Server": host, f"{MAIL}/Port": "25"})
    note = find(diagnose(registry, credentials, cwd=tmp_path), "note", "is Exchange Online direct send")
    assert "inside the tenant" in note.message and f"{MAIL}/Port" in note.keys
    login(credentials, endpoint=host)  # with a login it is not direct send
    findings = diagnose(registry, credentials, cwd=tmp_path)
    assert not [f for f in findings if "is Exchange Online direct send" in f.message]


def test_sasl_properties_are_known_and_misspelt_mechanisms_warned(
    registry: Registry, credentials: CredentialStore, tmp_path: Path
) -> None:
    login(credentials)
    setup(
        registry,
        {f"{J}/mail.smtp.auth.mechanisms": "XOAUTH2 PLIAN", f"{J}/mail.smtp.auth.xoauth2.disable": "false"},
    )
    findings = diagnose(registry, credentials, cwd=tmp_path)
    assert not [f for f in findings if "unknown JavaMail property" in f.message]
    find(findings, "warning", "names PLIAN, which is not a SASL mechanism")
    setup(registry, {f"{J}/mail.smtp.auth.xoauth2.disable": "maybe"})
    find(diagnose(registry, credentials, cwd=tmp_path), "error", "mail.smtp.auth.xoauth2.disable = 'maybe'")
