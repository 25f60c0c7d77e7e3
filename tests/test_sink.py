"""The test SMTP server: real smtplib clients over loopback, real TLS, against runtime.sink.Sink."""

from __future__ import annotations

import json
import mailbox
import os
import re
import signal
import smtplib
import ssl
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from jcsh.runtime.sink import DROP, STALL, Sink, SinkConfig, parse_fail
from jcsh.shell.cli import main as cli_main
from tests.support.pki import TestCA

MESSAGE = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: hello sink\r\n\r\nbody\r\n"
V = ssl.TLSVersion


def client_context(
    cafile: Path | str, *, min_version: ssl.TLSVersion | None = None, max_version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if min_version in (V.TLSv1, V.TLSv1_1) or max_version in (V.TLSv1, V.TLSv1_1):
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        if min_version:
            ctx.minimum_version = min_version
        if max_version:
            ctx.maximum_version = max_version
    return ctx


def config(**kw: object) -> SinkConfig:
    return SinkConfig(port=0, **kw)


@pytest.mark.timeout(20)
def test_plain_message_is_received_with_envelope_and_content() -> None:
    with Sink(config()) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            code, features = client.ehlo("client.example.test")
            assert code == 250 and b"jcsh-sink" in features
            assert not client.has_extn("starttls") and not client.has_extn("auth")
            client.sendmail("a@example.test", ["b@example.test", "c@example.test"], MESSAGE)
        (got,) = sink.wait_for(1)
    assert got.mail_from == "a@example.test"
    assert got.rcpt_tos == ["b@example.test", "c@example.test"]
    assert got.content == MESSAGE and got.subject == "hello sink"
    assert got.tls_version is None and got.authenticated_as is None
    assert got.peer.startswith("127.0.0.1:")
    assert sink.events == [f"connect {got.peer}"]  # the Controller's start-up poke is not a client


@pytest.mark.timeout(20)
def test_port_zero_binds_a_free_port_and_stop_is_idempotent() -> None:
    sink = Sink(config())
    sink.start()
    assert sink.port != 0
    sink.stop()
    sink.stop()
    with pytest.raises(OSError):
        smtplib.SMTP(sink.host, sink.port, timeout=2)


@pytest.mark.timeout(20)
def test_starttls_with_a_certificate_from_the_test_ca(pki: TestCA) -> None:
    leaf = pki.issue(via_intermediate=True)
    with Sink(config(mode="starttls", cert_path=leaf.chain_path, key_path=leaf.key_path)) as sink:
        assert sink.cert_path == leaf.chain_path
        with smtplib.SMTP("localhost", sink.port, timeout=5) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            client.starttls(context=client_context(pki.root_path))
            client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
        (got,) = sink.wait_for(1)
    assert got.tls_version in ("TLSv1.2", "TLSv1.3")
    assert any(e.startswith("STARTTLS TLSv1.") for e in sink.events)


@pytest.mark.timeout(20)
def test_starttls_untrusted_by_a_client_that_trusts_another_ca(pki: TestCA, other_ca: TestCA) -> None:
    leaf = other_ca.issue()
    with Sink(config(mode="starttls", cert_path=leaf.cert_path, key_path=leaf.key_path)) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            with pytest.raises(ssl.SSLCertVerificationError):
                client.starttls(context=client_context(pki.root_path))
    assert sink.messages == []


@pytest.mark.timeout(20)
def test_generated_self_signed_certificate_is_trusted_by_its_own_pem_and_removed_on_stop() -> None:
    with Sink(config(mode="implicit")) as sink:
        assert sink.cert_path is not None and sink.cert_path.is_file()
        with smtplib.SMTP_SSL("127.0.0.1", sink.port, timeout=5, context=client_context(sink.cert_path)) as client:
            client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
        (got,) = sink.wait_for(1)
        cert_path = sink.cert_path
    assert got.tls_version in ("TLSv1.2", "TLSv1.3")
    assert not cert_path.exists()


@pytest.mark.timeout(20)
def test_generated_certificate_in_cert_dir_is_kept_and_reused(tmp_path: Path) -> None:
    with Sink(config(mode="starttls", cert_dir=tmp_path)) as first:
        pem = first.cert_path.read_bytes() if first.cert_path else b""
    with Sink(config(mode="starttls", cert_dir=tmp_path)) as second:
        assert second.cert_path == tmp_path / "sink.pem"
        assert second.cert_path.read_bytes() == pem
    assert (tmp_path / "sink.key").stat().st_mode & 0o077 == 0


@pytest.mark.timeout(20)
def test_implicit_tls_refuses_a_plain_client() -> None:
    with Sink(config(mode="implicit")) as sink:
        with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError, OSError)):
            smtplib.SMTP(sink.host, sink.port, timeout=0.5)  # both wait: the client for a greeting
    assert sink.messages == []


@pytest.mark.timeout(20)
def test_auth_plain_and_login_accepted_without_tls_on_loopback() -> None:
    with Sink(config(auth={"alice": "s3cret-pw", "bob": "other"})) as sink:
        for mechanism, user, password in (("PLAIN", "alice", "s3cret-pw"), ("LOGIN", "bob", "other")):
            with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
                client.ehlo()
                assert mechanism in client.esmtp_features["auth"]
                client.user, client.password = user, password
                code, _ = client.auth(
                    mechanism, getattr(client, f"auth_{mechanism.lower()}"), initial_response_ok=mechanism == "PLAIN"
                )
                assert code == 235
                client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
        received = sink.wait_for(2)
    assert [r.authenticated_as for r in received] == ["alice", "bob"]
    assert "AUTH PLAIN alice: accepted" in sink.events
    assert not any("s3cret-pw" in e for e in sink.events)
    assert "s3cret-pw" not in repr(sink.config)


@pytest.mark.timeout(20)
def test_auth_refused_with_535_and_nothing_marked_authenticated() -> None:
    with Sink(config(auth={"alice": "right"})) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                client.login("alice", "wrong")
            assert refused.value.smtp_code == 535
            client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
        (got,) = sink.wait_for(1)
    assert got.authenticated_as is None
    assert "AUTH PLAIN alice: refused" in sink.events


@pytest.mark.timeout(20)
def test_auth_require_tls_refuses_auth_in_plain_text() -> None:
    with Sink(config(mode="starttls", auth={"alice": "pw"}, auth_require_tls=True)) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.ehlo()
            assert not client.has_extn("auth")
            assert client.docmd("AUTH", "PLAIN AGFsaWNlAHB3")[0] == 538
            client.starttls(context=client_context(sink.cert_path or ""))
            client.ehlo()
            assert client.has_extn("auth")
            assert client.login("alice", "pw")[0] == 235


@pytest.mark.timeout(20)
def test_require_starttls_refuses_mail_and_auth_before_tls() -> None:
    with Sink(config(mode="starttls", require_starttls=True, auth={"alice": "pw"})) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.ehlo()
            assert client.has_extn("starttls") and not client.has_extn("auth")
            assert client.mail("a@example.test")[0] == 530
            assert client.docmd("AUTH", "PLAIN AGFsaWNlAHB3")[0] == 530
            client.starttls(context=client_context(sink.cert_path or ""))
            client.login("alice", "pw")
            client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
        (got,) = sink.wait_for(1)
    assert got.authenticated_as == "alice" and got.tls_version is not None


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("stage", "code", "error"),
    [
        ("connect", 421, smtplib.SMTPConnectError),
        ("connect", 554, smtplib.SMTPConnectError),
        ("helo", 554, smtplib.SMTPHeloError),
        ("mail", 451, smtplib.SMTPSenderRefused),
        ("rcpt", 452, smtplib.SMTPRecipientsRefused),
        ("data", 554, smtplib.SMTPDataError),
    ],
)
def test_fail_stage_answers_the_code_with_the_documented_text(stage: str, code: int, error: type) -> None:
    with Sink(config(fail={stage: code})) as sink:
        with pytest.raises(error) as failed:
            with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
                client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    text = f"jcsh sink: failing {stage} as asked".encode()
    exc: Any = failed.value
    replies = (
        exc.recipients.values() if isinstance(exc, smtplib.SMTPRecipientsRefused) else [(exc.smtp_code, exc.smtp_error)]
    )
    assert all(reply == (code, text) for reply in replies)
    assert f"failing {stage} with {code}" in sink.events
    assert sink.messages == []


@pytest.mark.timeout(20)
def test_fail_auth_stage() -> None:
    with Sink(config(auth={"alice": "pw"}, fail={"auth": 454})) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
                client.login("alice", "pw")
    assert failed.value.smtp_code == 454
    assert not any("accepted" in e for e in sink.events)


@pytest.mark.timeout(20)
def test_421_closes_the_connection_after_replying() -> None:
    with Sink(config(fail={"mail": 421})) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.ehlo()
            assert client.mail("a@example.test") == (421, b"jcsh sink: failing mail as asked")
            with pytest.raises(smtplib.SMTPServerDisconnected):
                client.noop()


@pytest.mark.timeout(20)
def test_fail_one_recipient_accepts_the_others() -> None:
    with Sink(config(fail={"rcpt:B@example.test": 550})) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            refused = client.sendmail("a@example.test", ["b@example.test", "c@example.test"], MESSAGE)
        (got,) = sink.wait_for(1)
    assert refused == {"b@example.test": (550, b"jcsh sink: failing rcpt:b@example.test as asked")}
    assert got.rcpt_tos == ["c@example.test"]


@pytest.mark.timeout(20)
def test_drop_during_data_and_stall_at_greeting() -> None:
    with Sink(config(fail={"data": DROP})) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPServerDisconnected):
                client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    assert sink.messages == []
    with Sink(config(fail={"connect": STALL})) as sink:
        with pytest.raises((smtplib.SMTPServerDisconnected, TimeoutError)):
            smtplib.SMTP(sink.host, sink.port, timeout=0.5)


@pytest.mark.timeout(20)
def test_maildir_storage(tmp_path: Path) -> None:
    folder = tmp_path / "Maildir"
    with Sink(config(maildir=folder)) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            _, _reply = client.sendmail("a@example.test", ["b@example.test"], MESSAGE), client.noop()
        (got,) = sink.wait_for(1)
    box = mailbox.Maildir(folder, create=False)
    assert list(box.keys()) == [got.queue_id]
    assert box[got.queue_id]["Subject"] == "hello sink"


@pytest.mark.timeout(20)
def test_final_reply_carries_the_queue_id() -> None:
    with Sink(config()) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.ehlo()
            client.mail("a@example.test")
            client.rcpt("b@example.test")
            code, reply = client.data(MESSAGE)
        (got,) = sink.wait_for(1)
    assert code == 250 and reply.decode().endswith(f"queued as {got.queue_id}")


@pytest.mark.timeout(20)
def test_size_limit_is_advertised_and_enforced() -> None:
    with Sink(config(size_limit=100)) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.ehlo()
            assert client.esmtp_features["size"] == "100"
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.sendmail("a@example.test", ["b@example.test"], MESSAGE + b"x" * 200)
    assert refused.value.smtp_code == 552


@pytest.mark.timeout(20)
def test_tls12_client_cannot_reach_a_tls13_only_server(pki: TestCA) -> None:
    leaf = pki.issue()
    cfg = config(mode="starttls", cert_path=leaf.cert_path, key_path=leaf.key_path, min_version=V.TLSv1_3)
    with Sink(cfg) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            with pytest.raises(ssl.SSLError):
                client.starttls(context=client_context(pki.root_path, max_version=V.TLSv1_2))
    assert sink.messages == []
    assert any("UNSUPPORTED_PROTOCOL" in e or "VERSION" in e.upper() for e in sink.events)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("version", [V.TLSv1, V.TLSv1_1, V.TLSv1_2])
def test_old_tls_versions_can_be_served_when_asked(pki: TestCA, version: ssl.TLSVersion) -> None:
    leaf = pki.issue()
    cfg = config(
        mode="implicit", cert_path=leaf.cert_path, key_path=leaf.key_path, min_version=version, max_version=version
    )
    with Sink(cfg) as sink:
        ctx = client_context(pki.root_path, min_version=V.TLSv1, max_version=version)
        with smtplib.SMTP_SSL("localhost", sink.port, timeout=5, context=ctx) as client:
            client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
        (got,) = sink.wait_for(1)
    assert got.tls_version == {V.TLSv1: "TLSv1", V.TLSv1_1: "TLSv1.1", V.TLSv1_2: "TLSv1.2"}[version]


@pytest.mark.timeout(20)
def test_wait_for_times_out_when_nothing_arrives() -> None:
    with Sink(config()) as sink:
        with pytest.raises(TimeoutError):
            sink.wait_for(1, timeout=0.1)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("connect=421", ("connect", 421)),
        ("RCPT:a=b@example.test=550", ("rcpt:a=b@example.test", 550)),
        ("data=drop", ("data", DROP)),
        ("helo=stall", ("helo", STALL)),
    ],
)
def test_parse_fail(spec: str, expected: tuple[str, int]) -> None:
    assert parse_fail(spec) == expected


@pytest.mark.parametrize("spec", ["connect", "=421", "greet=421", "data=250", "data=600", "data=abc", "rcpt:x=550"])
def test_parse_fail_refuses(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_fail(spec)


@pytest.mark.parametrize(
    "kw",
    [
        {"mode": "smtps"},
        {"port": 70000},
        {"require_starttls": True},
        {"fail": {"greet": 421}},
        {"fail": {"data": 200}},
        {"cert_path": Path("x.pem")},
        {"size_limit": 0},
        {"auth_required": True},
    ],
)
def test_contradictory_config_is_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Sink(SinkConfig(**kw))


# -- the `jcsh sink` command ------------------------------------------------------------------------


def _start_command(home: Path, *options: str) -> tuple[subprocess.Popen[str], list[str]]:
    """Run `jcsh sink` and read its banner (up to "Ctrl-C stops it.")."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "jcsh", "--home", str(home), "sink", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
    )
    assert proc.stdout is not None
    banner: list[str] = []
    for line in proc.stdout:
        banner.append(line.rstrip("\n"))
        if line.startswith("Ctrl-C stops it."):
            return proc, banner
    proc.kill()
    raise AssertionError(f"no banner: {banner} {proc.stderr.read() if proc.stderr else ''}")


def _port(banner: list[str]) -> int:
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", banner[0])
    assert match, banner
    return int(match.group(1))


@pytest.mark.timeout(20)
def test_sink_command_prints_cert_and_messages_and_stops_on_sigint(home: Path) -> None:
    proc, banner = _start_command(
        home, "--starttls", "--auth", "alice:pw-not-shown", "--fail", "rcpt:x@example.test=550"
    )
    try:
        text = "\n".join(banner)
        cert = home / "sink" / "sink.pem"
        assert f"certificate: {cert}" in text
        assert (
            f"jcsh credential add --protocol X509_TrustedCertificate --endpoint 127.0.0.1 "
            f"--virtual-user jcsh-sink --certificate {cert}" in text
        )
        assert "alice" in text and "pw-not-shown" not in text
        with smtplib.SMTP("127.0.0.1", _port(banner), timeout=5) as client:
            client.starttls(context=client_context(cert))
            client.login("alice", "pw-not-shown")
            refused = client.sendmail("a@example.test", ["b@example.test", "x@example.test"], MESSAGE)
        assert list(refused) == ["x@example.test"]
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "a@example.test -> b@example.test" in line and "Subject: hello sink" in line
        assert "TLSv1." in line and "auth alice" in line
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopped; 1 message(s) received" in out
    assert "pw-not-shown" not in out + err


@pytest.mark.timeout(20)
def test_sink_command_json_reports_received_messages_at_the_end(home: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jcsh",
            "--home",
            str(home),
            "sink",
            "--port",
            "0",
            "--json",
            "--maildir",
            str(tmp_path / "md"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # with --json the banner goes to stderr
        port = int(re.search(r":(\d+) ", first).group(1))
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
        deadline = time.monotonic() + 5
        while not list((tmp_path / "md" / "new").iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    document = json.loads(out)
    assert document["port"] == port and document["mode"] == "plain" and document["certificate"] is None
    (received,) = document["received"]
    assert received["subject"] == "hello sink" and received["rcpt_tos"] == ["b@example.test"]


@pytest.mark.parametrize(
    "options",
    [
        ["--port", "70000"],
        ["--port", "abc"],
        ["--fail", "greet=421"],
        ["--fail", "data=250"],
        ["--fail", "data"],
        ["--auth", "alice"],
        ["--auth", ":secretpw"],
        ["--auth", "a:b", "--auth", "a:c"],
        ["--size", "0"],
        ["--cert", "x.pem"],
        ["--cert", "x.pem", "--key", "x.key"],
        ["--implicit", "--require-starttls"],
        ["--starttls", "--implicit"],
        ["--tls-min", "TLSv1.3"],
        ["--starttls", "--tls-min", "TLSv1.3", "--tls-max", "TLSv1.2"],
        ["--tls-min", "SSLv3"],
        ["--host", ""],
        ["--require-auth"],
        ["--nonsense"],
    ],
)
def test_sink_command_refuses_bad_options_with_exit_2(
    home: Path, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["--home", str(home), "sink", *options]) == 2
    captured = capsys.readouterr()
    assert "jcsh:" in captured.err and "secretpw" not in captured.err + captured.out


def test_sink_command_refuses_unusable_files(
    home: Path, tmp_path: Path, pki: TestCA, capsys: pytest.CaptureFixture[str]
) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    leaf, other = pki.issue(), pki.issue()
    assert cli_main(["--home", str(home), "sink", "--starttls", "--cert", str(not_pem), "--key", str(not_pem)]) == 2
    assert (
        cli_main(
            ["--home", str(home), "sink", "--implicit", "--cert", str(leaf.cert_path), "--key", str(other.key_path)]
        )
        == 2
    )
    assert cli_main(["--home", str(home), "sink", "--maildir", str(not_pem)]) == 2
    assert capsys.readouterr().err.count("jcsh: ") == 3


def test_sink_command_bad_option_with_json_is_one_document(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--home", str(home), "--json", "sink", "--fail", "nope=1"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["kind"] == "usage"


@pytest.mark.timeout(20)
def test_sink_command_port_in_use_fails_with_exit_1(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Sink(config()) as busy:
        assert cli_main(["--home", str(home), "sink", "--port", str(busy.port)]) == 1
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err


@pytest.mark.timeout(20)
def test_auth_required_refuses_mail_before_login() -> None:
    with Sink(config(auth={"alice": "pw"}, auth_required=True)) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.ehlo()
            assert client.mail("a@example.test") == (530, b"5.7.0 Authentication required")
            client.rset()
            client.login("alice", "pw")
            client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
        (got,) = sink.wait_for(1)
    assert got.authenticated_as == "alice"


def test_trust_hint_names_the_commands_until_the_certificate_is_trusted(home: Path, credentials) -> None:
    from jcsh.runtime.credentials import X509
    from jcsh.runtime.tls.selfsigned import ensure_self_signed
    from jcsh.shell.commands.sink import _trust_hint
    from jcsh.shell.context import Context

    cert, _, created = ensure_self_signed(home / "sink")
    assert created and ensure_self_signed(home / "sink")[2] is False  # kept while valid
    ctx = Context(home_arg=str(home))
    try:
        hint = _trust_hint(ctx, cert, "127.0.0.1")
        assert f"jcsh credential protocol add {X509}" in hint and f"--certificate {cert}" in hint
        credentials.add_protocol(X509)
        credentials.add(X509, "127.0.0.1", "jcsh-sink", certificate=cert.read_text())
        assert _trust_hint(ctx, cert, "127.0.0.1") == f"already trusted: credential {X509} 127.0.0.1 jcsh-sink"
    finally:
        ctx.close()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--auth-mechanisms", "XOAUTH2"], "needs --oauth-token-file"),
        (["--auth-mechanisms", "PLAIN", "--oauth-token-file", "TOKENS"], "needs --auth USER:PASS"),
        (["--auth-mechanisms", "GSSAPI", "--auth", "a:b"], "is not one of"),
        (["--auth-mechanisms", ",", "--auth", "a:b"], "names no mechanism"),
        (["--oauth-token-file", "MISSING"], "No such file"),
        (["--oauth-token-file", "EMPTY"], "holds no token"),
        (["--oauth-token-file", "SPACED"], "line 2 is not one token"),
    ],
)
def test_sink_command_refuses_bad_oauth_options(
    home: Path, tmp_path: Path, options: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"TOKENS": "tok-1\n", "EMPTY": "\n\n", "SPACED": "tok-1\nsecret token-2\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    args = [str(tmp_path / o) if o in (*files, "MISSING") else o for o in options]
    assert cli_main(["--home", str(home), "sink", *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "secret token-2" not in err and err.count("\n") == 1


@pytest.mark.timeout(20)
def test_sink_command_accepts_the_tokens_of_its_file(home: Path, tmp_path: Path) -> None:
    from jcsh.runtime.credentials import Secret
    from jcsh.runtime.mail.sasl import SaslExchange

    tokens = tmp_path / "tokens"
    tokens.write_text("issued-token-1\n")
    proc, banner = _start_command(
        home, "--auth", "alice:pw", "--auth-mechanisms", "plain,XOAUTH2,OAUTHBEARER", "--oauth-token-file", str(tokens)
    )
    try:
        assert "AUTH PLAIN, XOAUTH2, OAUTHBEARER" in "\n".join(banner)
        with smtplib.SMTP("127.0.0.1", _port(banner), timeout=5) as client:
            client.ehlo("test")
            assert set(client.esmtp_features["auth"].split()) == {"PLAIN", "XOAUTH2", "OAUTHBEARER"}
            exchange = SaslExchange("OAUTHBEARER", "jobs@x.example", Secret("issued-token-1"), host="h", port=1)
            assert client.docmd(exchange.command())[0] == 235
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "issued-token-1" not in out + err
