"""Effective mail settings: precedence over every key, every bad value, the seed's Gmail and Office 365 tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jcsh.runtime.credentials import CredentialStore
from jcsh.runtime.errors import ConfigError, UsageError
from jcsh.runtime.mail.settings import (
    MAIL,
    SETTING_NAMES,
    VERIFY_KEY,
    CredentialRef,
    MailSettings,
    Setting,
    load_settings,
)
from jcsh.runtime.registry import Registry
from tests.support.cli import jcsh

J = f"{MAIL}/JavaMail"
GMAIL = f"{MAIL}/smtp.gmail.com"
SECRET = "app-password-never-shown"
D = "default"


def load(
    registry: Registry, credentials: CredentialStore | None, entries: dict[str, str], **kw: object
) -> MailSettings:
    for path, value in entries.items():
        registry.set(path, value)
    return load_settings(registry, credentials, cwd=Path("/srv/jcsh"), **kw)


def smtp_credential(
    credentials: CredentialStore, endpoint: str, virtual_user: str = "default", real_user: str | None = "someone"
) -> None:
    if "smtp" not in credentials.protocols():
        credentials.add_protocol("smtp")
    credentials.add("smtp", endpoint, virtual_user, real_user=real_user, secret=SECRET)


def pairs(s: MailSettings) -> dict[str, tuple[object, str]]:
    return {name: (s.setting(name).value, s.setting(name).origin) for name in SETTING_NAMES}


# -- the seed's own examples ---------------------------------------------------------------------


def test_gmail_table_every_value_and_origin(registry: Registry, credentials: CredentialStore) -> None:
    smtp_credential(credentials, "smtp.gmail.com", real_user="someone")
    s = load(
        registry,
        credentials,
        {
            f"{GMAIL}/JavaMail/mail.smtp.starttls.required": "true",
            f"{GMAIL}/JavaMail/mail.smtp.starttls.enabled": "true",
            f"{GMAIL}/Server": "smtp.gmail.com",
        },
    )
    cred_origin = "credential smtp smtp.gmail.com default"
    assert pairs(s) == {
        "server": ("smtp.gmail.com", f"{GMAIL}/Server"),
        "transport": ("smtp", D),
        "port": (587, D),
        "security": ("STARTTLSRequired", f"{GMAIL}/JavaMail/mail.smtp.starttls.required"),
        "from": (None, D),
        "user": ("someone", cred_origin),
        "credential": (CredentialRef("smtp.gmail.com", "someone", "default"), cred_origin),
        "auth_mechanisms": (("LOGIN", "PLAIN", "DIGEST-MD5", "NTLM"), "default"),
        "verify": ("Verify", D),
        "check_server_identity": (True, D),
        "trust_hosts": ((), D),
        "protocols": ((), D),
        "connect_timeout_ms": (10_000, D),
        "read_timeout_ms": (30_000, D),
        "write_timeout_ms": (30_000, D),
        "send_partial": (False, D),
        "attachment_error": ("Error", D),
        "accessible_path": ("/srv/jcsh", D),
        "localhost": (None, D),
        "envelope_from": (None, D),
    }
    assert s.scope == GMAIL
    assert set(s.raw_properties) == {"mail.smtp.starttls.required", "mail.smtp.starttls.enabled"}
    assert s.warnings == (f"{MAIL}/Transport is not set (it is required); smtp is assumed",)


def test_gmail_table_after_configure(registry: Registry, credentials: CredentialStore) -> None:
    """What an admin really has: System_Mail_Configure ran first (global From, Server, Transport)."""
    smtp_credential(credentials, "smtp.gmail.com")
    s = load(
        registry,
        credentials,
        {
            f"{MAIL}/From": "Ops <ops@gmail.com>",
            f"{MAIL}/Server": "smtp.gmail.com",
            f"{MAIL}/Transport": "smtp",
            f"{GMAIL}/JavaMail/mail.smtp.starttls.required": "true",
            f"{GMAIL}/JavaMail/mail.smtp.starttls.enabled": "true",
            f"{GMAIL}/Server": "smtp.gmail.com",
        },
    )
    assert (s.server.value, s.server.origin) == ("smtp.gmail.com", f"{MAIL}/Server")
    assert (s.transport.value, s.transport.origin) == ("smtp", f"{MAIL}/Transport")
    assert (s.from_.value, s.from_.origin) == ("Ops <ops@gmail.com>", f"{MAIL}/From")
    assert (s.port.value, s.security.value) == (587, "STARTTLSRequired")
    assert s.warnings == ()


def test_office365_direct_send_table_every_value_and_origin(registry: Registry, credentials: CredentialStore) -> None:
    server = "example-com.mail.protection.outlook.com"
    s = load(
        registry,
        credentials,
        {
            f"{J}/mail.smtp.starttls.required": "true",
            f"{J}/mail.smtp.starttls.enabled": "true",
            f"{J}/mail.smtp.port": "25",
            f"{MAIL}/Server": server,
        },
    )
    assert pairs(s) == {
        "server": (server, f"{MAIL}/Server"),
        "transport": ("smtp", D),
        "port": (25, f"{J}/mail.smtp.port"),
        "security": ("STARTTLSRequired", f"{J}/mail.smtp.starttls.required"),
        "from": (None, D),
        "user": (None, D),
        "credential": (None, D),
        "auth_mechanisms": (("LOGIN", "PLAIN", "DIGEST-MD5", "NTLM"), "default"),
        "verify": ("Verify", D),
        "check_server_identity": (True, D),
        "trust_hosts": ((), D),
        "protocols": ((), D),
        "connect_timeout_ms": (10_000, D),
        "read_timeout_ms": (30_000, D),
        "write_timeout_ms": (30_000, D),
        "send_partial": (False, D),
        "attachment_error": ("Error", D),
        "accessible_path": ("/srv/jcsh", D),
        "localhost": (None, D),
        "envelope_from": (None, D),
    }
    assert s.scope is None


# -- server and scopes ---------------------------------------------------------------------------

SERVER_CASES = [
    # entries, override, expected server, its origin, expected scope
    ({}, None, None, D, None),
    ({f"{MAIL}/Server": "a.example.test"}, None, "a.example.test", f"{MAIL}/Server", None),
    ({f"{MAIL}/Server": "a.example.test"}, "b.example.test", "b.example.test", "--server", None),
    ({f"{MAIL}/s1/Server": "s1.example.test"}, None, "s1.example.test", f"{MAIL}/s1/Server", f"{MAIL}/s1"),
    ({f"{MAIL}/s1/Server": "x.test", f"{MAIL}/s2/Server": "y.test"}, None, None, D, None),
    (
        {f"{MAIL}/s1/Server": "x.test", f"{MAIL}/s2/Server": "y.test", f"{MAIL}/Server": "y.test"},
        None,
        "y.test",
        f"{MAIL}/Server",
        f"{MAIL}/s2",
    ),
    ({f"{MAIL}/a.test/Port": "2525", f"{MAIL}/Server": "a.test"}, None, "a.test", f"{MAIL}/Server", f"{MAIL}/a.test"),
    ({f"{MAIL}/a.test/Port": "2525", f"{MAIL}/Server": "b.test"}, "a.test", "a.test", "--server", f"{MAIL}/a.test"),
    ({f"{MAIL}/A.test/Port": "2525", f"{MAIL}/Server": "a.test"}, None, "a.test", f"{MAIL}/Server", None),
    ({f"{MAIL}/Server": "[::1]"}, None, "[::1]", f"{MAIL}/Server", None),
    ({f"{MAIL}/Server": "127.0.0.1"}, None, "127.0.0.1", f"{MAIL}/Server", None),
]


@pytest.mark.parametrize(("entries", "override", "server", "origin", "scope"), SERVER_CASES)
def test_effective_server_and_scope(
    registry: Registry,
    credentials: CredentialStore,
    entries: dict[str, str],
    override: str | None,
    server: str | None,
    origin: str,
    scope: str | None,
) -> None:
    s = load(registry, credentials, entries, server=override)
    assert (s.server.value, s.server.origin, s.scope) == (server, origin, scope)


def test_no_server_is_an_error_only_when_needed(registry: Registry, credentials: CredentialStore) -> None:
    s = load(registry, credentials, {})
    assert s.server.value is None and s.host is None
    with pytest.raises(ConfigError, match="no mail server is configured; run `jcsh configure`"):
        s.require_server()


def test_two_scopes_without_server_is_reported(registry: Registry, credentials: CredentialStore) -> None:
    s = load(registry, credentials, {f"{MAIL}/s1/Server": "x.test", f"{MAIL}/s2/Server": "y.test"})
    assert any("2 server scopes" in w for w in s.warnings)


def test_scope_that_does_not_apply_is_noted(registry: Registry, credentials: CredentialStore) -> None:
    s = load(registry, credentials, {f"{MAIL}/smtp.gmail.com/Port": "587", f"{MAIL}/Server": "SMTP.gmail.com"})
    assert s.port.value == 25
    assert any(f"{MAIL}/smtp.gmail.com do not apply" in w for w in s.warnings)


def test_ipv6_server_connect_host_loses_brackets(registry: Registry, credentials: CredentialStore) -> None:
    assert load(registry, credentials, {f"{MAIL}/Server": "[::1]"}).host == "::1"


def test_bad_override_is_a_usage_error(registry: Registry, credentials: CredentialStore) -> None:
    with pytest.raises(UsageError, match="--server 'bad host'"):
        load(registry, credentials, {}, server="bad host")


# -- every key: scope beats global, global beats default -----------------------------------------

KEY_CASES = [
    # key (relative to a scope or MAIL), scoped value, global value, attribute,
    # expected from scope, from global, default
    ("Transport", "smtps", "smtp", "transport", "smtps", "smtp", "smtp"),
    ("Port", "2525", "26", "port", 2525, 26, 25),
    ("From", "a@x.test", "b@y.test", "from_", "a@x.test", "b@y.test", None),
    ("User", "alice", "bob", "user", "alice", "bob", None),
    ("AttachmentError", "Skip", "Error", "attachment_error", "Skip", "Error", "Error"),
    ("ConnectionSecurity", "TLS", "STARTTLS", "security", "TLS", "STARTTLS", "None"),
    ("AccessiblePath", "/srv/a", "/srv/b", "accessible_path", "/srv/a", "/srv/b", "/srv/jcsh"),
    ("SendPartial", "true", "false", "send_partial", True, False, False),
    ("JavaMail/mail.smtp.port", "2526", "2527", "port", 2526, 2527, 25),
    ("JavaMail/mail.smtp.connectiontimeout", "1000", "2000", "connect_timeout_ms", 1000, 2000, 10_000),
    ("JavaMail/mail.smtp.timeout", "3000", "4000", "read_timeout_ms", 3000, 4000, 30_000),
    ("JavaMail/mail.smtp.writetimeout", "5000", "6000", "write_timeout_ms", 5000, 6000, 30_000),
    (
        "JavaMail/mail.smtp.from",
        "bounce@x.test",
        "Bounce <b@y.test>",
        "envelope_from",
        "bounce@x.test",
        "b@y.test",
        None,
    ),
    (
        "JavaMail/mail.smtp.localhost",
        "client.x.test",
        "client.y.test",
        "localhost",
        "client.x.test",
        "client.y.test",
        None,
    ),
    ("JavaMail/mail.smtp.sendpartial", "TRUE", "False", "send_partial", True, False, False),
    ("JavaMail/mail.smtp.ssl.trust", "*", "a.test b.test", "trust_hosts", ("*",), ("a.test", "b.test"), ()),
    ("JavaMail/mail.smtp.ssl.checkserveridentity", "false", "true", "check_server_identity", False, True, True),
    (
        "JavaMail/mail.smtp.ssl.protocols",
        "TLSv1.3",
        "tlsv1.2 TLSv1.3",
        "protocols",
        ("TLSv1.3",),
        ("TLSv1.2", "TLSv1.3"),
        (),
    ),
    (
        "JavaMail/mail.smtp.starttls.required",
        "true",
        "true",
        "security",
        "STARTTLSRequired",
        "STARTTLSRequired",
        "None",
    ),
    ("JavaMail/mail.smtp.starttls.enable", "true", "true", "security", "STARTTLS", "STARTTLS", "None"),
    ("JavaMail/mail.smtp.starttls.enabled", "tRuE", "TRUE", "security", "STARTTLS", "STARTTLS", "None"),
    ("JavaMail/mail.smtp.ssl.enable", "true", "false", "security", "TLS", "None", "None"),
]


@pytest.mark.parametrize(("key", "scoped", "global_", "attr", "from_scope", "from_global", "default"), KEY_CASES)
@pytest.mark.parametrize("where", ["scope", "global", "default", "other-scope"])
def test_key_precedence(
    registry: Registry,
    credentials: CredentialStore,
    key: str,
    scoped: str,
    global_: str,
    attr: str,
    from_scope: object,
    from_global: object,
    default: object,
    where: str,
) -> None:
    entries = {f"{MAIL}/Server": "s.example.test", f"{MAIL}/other.test/{key}": "999-never-read"}
    if where == "scope":
        entries |= {f"{MAIL}/s.example.test/{key}": scoped, f"{MAIL}/{key}": global_}
    elif where == "global":
        entries |= {f"{MAIL}/{key}": global_}
    got: Setting = getattr(load(registry, credentials, entries), attr)
    expected = {"scope": (from_scope, f"{MAIL}/s.example.test/{key}"), "global": (from_global, f"{MAIL}/{key}")}
    if where in expected:
        assert (got.value, got.origin) == expected[where]
    else:
        assert got.value == default


def test_verify_key(registry: Registry, credentials: CredentialStore) -> None:
    assert load(registry, credentials, {}).verify == Setting("Verify", D)
    s = load(registry, credentials, {VERIFY_KEY: "dontverify"})
    assert s.verify == Setting("DontVerify", VERIFY_KEY)


# -- security and port ----------------------------------------------------------------------------

SECURITY_CASES = [
    # entries, security, its origin (relative), port, its origin
    ({}, "None", D, 25, D),
    ({"Transport": "smtps"}, "TLS", "Transport", 465, D),
    (
        {"Transport": "smtps", "JavaMail/mail.smtps.ssl.enable": "false"},
        "None",
        "JavaMail/mail.smtps.ssl.enable",
        25,
        D,
    ),
    ({"JavaMail/mail.smtp.ssl.enable": "true"}, "TLS", "JavaMail/mail.smtp.ssl.enable", 465, D),
    ({"JavaMail/mail.smtp.starttls.enable": "true"}, "STARTTLS", "JavaMail/mail.smtp.starttls.enable", 25, D),
    ({"JavaMail/mail.smtp.starttls.enabled": "true"}, "STARTTLS", "JavaMail/mail.smtp.starttls.enabled", 25, D),
    (
        {"JavaMail/mail.smtp.starttls.required": "true"},
        "STARTTLSRequired",
        "JavaMail/mail.smtp.starttls.required",
        587,
        D,
    ),
    (
        {"JavaMail/mail.smtp.starttls.required": "false", "JavaMail/mail.smtp.starttls.enable": "true"},
        "STARTTLS",
        "JavaMail/mail.smtp.starttls.enable",
        25,
        D,
    ),
    (
        {"JavaMail/mail.smtp.starttls.required": "true", "JavaMail/mail.smtp.ssl.enable": "true"},
        "STARTTLSRequired",
        "JavaMail/mail.smtp.starttls.required",
        587,
        D,
    ),
    (
        {"JavaMail/mail.smtp.starttls.enable": "true", "JavaMail/mail.smtp.ssl.enable": "true"},
        "STARTTLS",
        "JavaMail/mail.smtp.starttls.enable",
        25,
        D,
    ),
    (
        {"ConnectionSecurity": "None", "JavaMail/mail.smtp.starttls.required": "true"},
        "None",
        "ConnectionSecurity",
        25,
        D,
    ),
    (
        {"ConnectionSecurity": "tls", "JavaMail/mail.smtp.starttls.required": "true"},
        "TLS",
        "ConnectionSecurity",
        465,
        D,
    ),
    ({"ConnectionSecurity": "starttlsrequired"}, "STARTTLSRequired", "ConnectionSecurity", 587, D),
    ({"ConnectionSecurity": "STARTTLS"}, "STARTTLS", "ConnectionSecurity", 25, D),
    # smtps reads mail.smtps.*: the mail.smtp.* STARTTLS flags are ignored
    ({"Transport": "smtps", "JavaMail/mail.smtp.starttls.required": "true"}, "TLS", "Transport", 465, D),
    (
        {"Transport": "smtps", "JavaMail/mail.smtps.starttls.required": "true"},
        "STARTTLSRequired",
        "JavaMail/mail.smtps.starttls.required",
        587,
        D,
    ),
    (
        {"Transport": "smtps", "JavaMail/mail.smtps.port": "2465", "JavaMail/mail.smtp.port": "25"},
        "TLS",
        "Transport",
        2465,
        "JavaMail/mail.smtps.port",
    ),
    ({"JavaMail/mail.smtps.port": "2465"}, "None", D, 25, D),
    # Port beats mail.<transport>.port beats the security default
    ({"Port": "2525", "JavaMail/mail.smtp.port": "26"}, "None", D, 2525, "Port"),
    (
        {"JavaMail/mail.smtp.port": "26", "JavaMail/mail.smtp.starttls.required": "true"},
        "STARTTLSRequired",
        "JavaMail/mail.smtp.starttls.required",
        26,
        "JavaMail/mail.smtp.port",
    ),
]


@pytest.mark.parametrize(("entries", "security", "sec_origin", "port", "port_origin"), SECURITY_CASES)
def test_security_and_port(
    registry: Registry,
    credentials: CredentialStore,
    entries: dict[str, str],
    security: str,
    sec_origin: str,
    port: int,
    port_origin: str,
) -> None:
    s = load(registry, credentials, {f"{MAIL}/{k}": v for k, v in entries.items()})
    absolute = lambda o: o if o == D else f"{MAIL}/{o}"  # noqa: E731
    assert (s.security.value, s.security.origin) == (security, absolute(sec_origin))
    assert (s.port.value, s.port.origin) == (port, absolute(port_origin))


def test_smtps_ignores_mail_smtp_properties_with_a_warning(registry: Registry, credentials: CredentialStore) -> None:
    s = load(registry, credentials, {f"{MAIL}/Transport": "smtps", f"{J}/mail.smtp.starttls.enable": "true"})
    assert any(f"{J}/mail.smtp.starttls.enable is ignored: Transport is smtps" in w for w in s.warnings)
    assert "mail.smtp.starttls.enable" in s.raw_properties


def test_both_spellings_disagreeing_are_reported(registry: Registry, credentials: CredentialStore) -> None:
    s = load(
        registry, credentials, {f"{J}/mail.smtp.starttls.enable": "false", f"{J}/mail.smtp.starttls.enabled": "true"}
    )
    assert s.security == Setting("STARTTLS", f"{J}/mail.smtp.starttls.enabled")
    assert any("disagree" in w for w in s.warnings)


# -- authentication -------------------------------------------------------------------------------


def test_credential_must_match_server_exactly(registry: Registry, credentials: CredentialStore) -> None:
    smtp_credential(credentials, "SMTP.example.test")
    smtp_credential(credentials, "smtp.example.test", virtual_user="ops")
    s = load(registry, credentials, {f"{MAIL}/Server": "smtp.example.test"})
    assert s.credential == Setting(None, D)
    assert s.user == Setting(None, D)


def test_user_names_the_login_when_the_credential_has_none(registry: Registry, credentials: CredentialStore) -> None:
    smtp_credential(credentials, "smtp.example.test", real_user=None)
    s = load(registry, credentials, {f"{MAIL}/Server": "smtp.example.test", f"{MAIL}/User": "relay-user"})
    assert s.credential == Setting(
        CredentialRef("smtp.example.test", None, "default"), "credential smtp smtp.example.test default"
    )
    assert s.user == Setting("relay-user", f"{MAIL}/User")


def test_credential_real_user_wins_over_user(registry: Registry, credentials: CredentialStore) -> None:
    smtp_credential(credentials, "smtp.example.test", real_user="cred-user")
    s = load(registry, credentials, {f"{MAIL}/Server": "smtp.example.test", f"{MAIL}/User": "key-user"})
    assert s.user == Setting("cred-user", "credential smtp smtp.example.test default")
    assert any("key-user" in w for w in s.warnings)


def test_auth_false_turns_the_login_off(registry: Registry, credentials: CredentialStore) -> None:
    smtp_credential(credentials, "smtp.example.test")
    s = load(registry, credentials, {f"{MAIL}/Server": "smtp.example.test", f"{J}/mail.smtp.auth": "FALSE"})
    assert s.credential == Setting(None, f"{J}/mail.smtp.auth")


def test_override_server_picks_its_own_credential(registry: Registry, credentials: CredentialStore) -> None:
    smtp_credential(credentials, "other.example.test", real_user="other")
    s = load(registry, credentials, {f"{MAIL}/Server": "smtp.example.test"}, server="other.example.test")
    assert s.user.value == "other"


# -- bad values -----------------------------------------------------------------------------------

BAD_VALUES = [
    ("Transport", "SMTP"),
    ("Transport", "imap"),
    ("Port", "abc"),
    ("Port", "0"),
    ("Port", "65536"),
    ("Port", "-25"),
    ("From", "not-an-address"),
    ("From", "a@x.test, b@y.test"),
    ("From", "x@"),
    ("Server", "smtp.example.test:587"),
    ("Server", "bad host"),
    ("Server", " smtp.example.test"),
    ("Server", "[smtp.example.test]"),
    ("AttachmentError", "Ignore"),
    ("ConnectionSecurity", "SSL"),
    ("SendPartial", "yes"),
    ("AccessiblePath", " "),
    ("JavaMail/mail.smtp.port", "x"),
    ("JavaMail/mail.smtp.starttls.enable", "yes"),
    ("JavaMail/mail.smtp.starttls.enabled", "1"),
    ("JavaMail/mail.smtp.starttls.required", "on"),
    ("JavaMail/mail.smtp.ssl.enable", "enabled"),
    ("JavaMail/mail.smtp.ssl.checkserveridentity", "no"),
    ("JavaMail/mail.smtp.auth", "y"),
    ("JavaMail/mail.smtp.sendpartial", "t"),
    ("JavaMail/mail.smtp.connectiontimeout", "0"),
    ("JavaMail/mail.smtp.connectiontimeout", "-1"),
    ("JavaMail/mail.smtp.timeout", "1.5"),
    ("JavaMail/mail.smtp.timeout", "ten"),
    ("JavaMail/mail.smtp.writetimeout", "99999999999"),
    ("JavaMail/mail.smtp.ssl.protocols", "TLSv1.4"),
    ("JavaMail/mail.smtp.ssl.protocols", "SSLv3 TLSv1.2"),
    ("JavaMail/mail.smtp.localhost", "two words"),
    ("JavaMail/mail.smtp.from", "nope"),
]


@pytest.mark.parametrize(("key", "value"), BAD_VALUES)
def test_bad_value_is_a_config_error_naming_key_and_value(
    registry: Registry, credentials: CredentialStore, key: str, value: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(registry, credentials, {f"{MAIL}/{key}": value})
    assert f"{MAIL}/{key} = {value!r}" in info.value.message
    assert info.value.exit_code == 1


def test_bad_verify_value(registry: Registry, credentials: CredentialStore) -> None:
    with pytest.raises(ConfigError, match=f"{VERIFY_KEY} = 'Maybe'"):
        load(registry, credentials, {VERIFY_KEY: "Maybe"})


def test_transport_in_wrong_case_says_what_was_meant(registry: Registry, credentials: CredentialStore) -> None:
    with pytest.raises(ConfigError, match="did you mean smtps"):
        load(registry, credentials, {f"{MAIL}/Transport": "SMTPS"})


def test_bad_value_in_a_scope_names_the_scoped_key(registry: Registry, credentials: CredentialStore) -> None:
    with pytest.raises(ConfigError, match=f"{MAIL}/s.test/Port = 'x'"):
        load(registry, credentials, {f"{MAIL}/Server": "s.test", f"{MAIL}/s.test/Port": "x"})


def test_several_bad_values_are_counted(registry: Registry, credentials: CredentialStore) -> None:
    with pytest.raises(ConfigError, match="and 1 more problem"):
        load(registry, credentials, {f"{MAIL}/Port": "x", f"{MAIL}/SendPartial": "maybe"})


# -- unknown and ineffective keys -----------------------------------------------------------------


def test_unknown_properties_are_kept_and_reported(registry: Registry, credentials: CredentialStore) -> None:
    s = load(
        registry,
        credentials,
        {
            f"{J}/mail.smtp.ssl.ciphersuites": "X",
            f"{J}/mail.debug": "true",
            f"{J}/mail.smtp.host": "ignored.example.test",
        },
    )
    assert s.raw_properties["mail.debug"] == Setting("true", f"{J}/mail.debug")
    assert s.raw_properties["mail.smtp.ssl.ciphersuites"].value == "X"
    text = "\n".join(s.warnings)
    assert "unknown JavaMail property 'mail.debug'" in text
    assert "unknown JavaMail property 'mail.smtp.ssl.ciphersuites'" in text
    assert f"{J}/mail.smtp.host has no effect" in text


def test_misspelt_key_is_reported(registry: Registry, credentials: CredentialStore) -> None:
    s = load(registry, credentials, {f"{MAIL}/server": "smtp.example.test"})
    assert s.server.value is None
    assert any(f"did you mean {MAIL}/Server" in w for w in s.warnings)


# -- output ---------------------------------------------------------------------------------------


def test_to_json_shape(registry: Registry, credentials: CredentialStore) -> None:
    smtp_credential(credentials, "smtp.example.test")
    data = load(registry, credentials, {f"{MAIL}/Server": "smtp.example.test"}).to_json()
    for key in (
        "server",
        "transport",
        "port",
        "security",
        "from",
        "user",
        "credential",
        "verify",
        "check_server_identity",
        "trust_hosts",
        "protocols",
        "connect_timeout_ms",
        "read_timeout_ms",
        "send_partial",
        "attachment_error",
        "accessible_path",
    ):
        assert set(data[key]) == {"value", "origin"}, key
    assert data["credential"]["value"] == {
        "endpoint": "smtp.example.test",
        "real_user": "someone",
        "virtual_user": "default",
    }
    assert isinstance(data["warnings"], list)
    assert SECRET not in json.dumps(data)


def test_cli_mail_settings_human_and_json(home: Path, credentials: CredentialStore) -> None:
    smtp_credential(credentials, "smtp.gmail.com")
    for path, value in {
        f"{GMAIL}/Server": "smtp.gmail.com",
        f"{GMAIL}/JavaMail/mail.smtp.starttls.required": "true",
        f"{J}/mail.smtp.host": "x",
    }.items():
        credentials.registry.set(path, value)
    ran = jcsh(home, "mail", "settings")
    assert ran.code == 0
    lines = ran.out.splitlines()
    assert lines[0].split() == ["SETTING", "VALUE", "ORIGIN"]
    assert lines[1].split() == ["server", "smtp.gmail.com", f"{GMAIL}/Server"]
    assert "mail.smtp.host has no effect" in ran.err
    assert SECRET not in ran.out + ran.err
    data = jcsh(home, "mail", "settings", "--json").json
    assert data["port"] == {"value": 587, "origin": "default"}
    other = jcsh(home, "mail", "settings", "--server", "relay.example.test", "--json").json
    assert other["server"] == {"value": "relay.example.test", "origin": "--server"}
    assert other["port"]["value"] == 25


def test_cli_mail_settings_bad_value_exits_1(home: Path, registry: Registry) -> None:
    registry.set(f"{MAIL}/Port", "abc")
    ran = jcsh(home, "mail", "settings", "--json")
    assert ran.code == 1
    assert ran.json == {"error": {"kind": "config", "message": f"{MAIL}/Port = 'abc' is not a port number (1-65535)"}}


def test_plain_addresses_read_as_the_header_registry_reads_them() -> None:
    """parse_address's shortcut for a bare dot-atom addr-spec equals email.headerregistry's reading."""
    import random

    from jcsh.runtime.mail import values
    from jcsh.runtime.mail.plain import plain_address

    rng = random.Random(15)
    alphabet = "aZ09_+-.@"
    samples = ["a@example.test", "first.last+tag@mail-1.example.test", "_@x", "A-B@C", "x@a.b.c.d"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(3000)]
    taken = 0
    for text in samples:
        if plain_address(text) is None:
            continue
        taken += 1
        assert values.parse_address(text) == values._parse_address(text), text
    assert taken > 100
    for text in ("a..b@example.test", ".a@example.test", "a@example..test", "a@example.test.", "a b@example.test"):
        assert plain_address(text) is None  # left to the header registry
