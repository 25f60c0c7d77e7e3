"""Permissions at the REPL: the prompt on a terminal (y, a, N), %sandbox, flags at start, %run,
and the history that keeps no secret."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jcsh.runtime.registry import open_registry
from jcsh.shell.history import keep_in_history


def _question(path: str) -> str:
    return re.escape(f"allow this statement to change {path}? [y]es once, [a]lways this session, [N]o ")


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_the_repl_asks_y_once_a_always_and_n_refuses(terminal, home: Path, tmp_path: Path) -> None:
    t = terminal("--timeout", "1")
    t.prompt()
    # y: this request, for the rest of the statement (asked once for two writes of the same key).
    t.run("for port in ('2526', '2527'):\n    registry.set('/configuration/mail/Port', port)\n")
    t.expect(_question("/configuration/mail/Port"))
    t.settle(1.5)  # longer than the statement's timeout: waiting for the user is not the script's time
    t.child.send("y\r")
    t.prompt()
    t.run("registry.get('/configuration/mail/Port')")
    t.expect(r"'2527'")
    t.prompt()
    # The next statement asks again; Enter is No: the statement gets the error, nothing is written.
    t.run("registry.set('/configuration/mail/Port', '9')")
    t.expect(_question("/configuration/mail/Port"))
    t.child.send("\r")
    t.expect(re.escape("registry.set('/configuration/mail/Port') needs --allow-config"))
    t.prompt()
    # a: the flag, for the session: no more questions.
    t.run("registry.set('/configuration/mail/From', 'ops@example.test')")
    t.expect(_question("/configuration/mail/From"))
    t.child.send("a\r")
    t.expect(r"--allow-config granted for this session")
    t.prompt()
    t.run("registry.set('/configuration/mail/Port', '2528'); jcsOut.println('no question')")
    t.expect(r"\nno question\n")
    t.prompt()
    t.run("%sandbox")
    t.expect(r"--allow-config: change the mail and TLS configuration and credentials")
    t.prompt()
    # %run never asks: a permission the session lacks is refused at once.
    script = tmp_path / "probe.jcs"
    script.write_text("tls.probe('127.0.0.1:9')\n")
    t.run(f"%run {script}")
    t.expect(re.escape("tls.probe('127.0.0.1:9') needs --allow-net=127.0.0.1:9"))
    t.prompt()
    assert t.finish() == 0
    assert t.text.count("allow this statement") == 3
    registry = open_registry(home)
    try:
        assert registry.get("/configuration/mail/Port") == "2528"
        assert registry.get("/configuration/mail/From") == "ops@example.test"
    finally:
        registry.close()


@pytest.mark.timeout(60)
def test_flags_at_start_and_the_admins_commands(terminal) -> None:
    t = terminal("--allow-config", "--allow-net=127.0.0.1:9")
    t.prompt()
    t.run("%sandbox")
    t.expect(r"--allow-config: change the mail(.|\n)*--allow-net: connect to 127\.0\.0\.1:9")
    t.prompt()
    t.run("registry.set('/configuration/jcs/TLS/VerifyServerCertificateTrust', 'Verify'); jcsOut.println('set')")
    t.expect(r"\nset\n")
    t.prompt()
    assert t.finish() == 0
    assert "allow this statement" not in t.text
    # Without flags, the admin's own % commands change the configuration as they always did.
    t = terminal()
    t.prompt()
    t.run("%registry set /configuration/mail/Port 2530")
    t.prompt()
    t.run("%credential protocol add smtp")
    t.prompt()
    t.run("registry.get('/configuration/mail/Port')")
    t.expect(r"'2530'")
    t.prompt()
    assert t.finish() == 0
    assert "allow this statement" not in t.text and "needs --allow" not in t.text


@pytest.mark.timeout(60)
def test_history_keeps_no_secret(terminal, home: Path) -> None:
    lines = [
        "smtp_password = 'hunter2-a'",
        "creds = dict(api_key='hunter2-b')",
        "credentials.add('smtp', 'h', real_user='u')",
        "cfg = {'token': 'hunter2-c'}",
        "kept_marker = 1",
    ]
    for term in ("xterm-256color", "dumb"):  # prompt_toolkit's history, and the plain prompt's
        t = terminal(term=term)
        t.prompt()
        for line in lines:
            t.run(line)
            if line.startswith("credentials.add"):
                t.expect(r"allow this statement to add the credential")
                t.child.send("n\r")
            t.prompt()
        assert t.finish() == 0
    history = (home / "history").read_text()
    assert history.count("+kept_marker = 1") == 2
    assert "hunter2" not in history and "credentials.add" not in history


def test_what_history_leaves_out() -> None:
    left_out = [
        "password = 'x'",
        "x.secret = s",
        "cfg['PWD'] = p",
        "f(token=t)",
        "TOKEN += 'x'",
        "a, api_key = 1, 2",
        "(passwd := 'x')",
        "def login(password='x'): pass",
        "headers = {'X-ApiKey': k}",
        "credentials . add (",
        "%credential add --password=x",
    ]
    kept = ["credentials.list()", "print(token)", "if secret: pass", "x == password", "mail.send('a@b', 's', 'b')"]
    assert [line for line in left_out if keep_in_history(line)] == []
    assert [line for line in kept if not keep_in_history(line)] == []


@pytest.mark.timeout(30)
def test_sandbox_lists_the_grants_as_json(home: Path) -> None:
    import io
    import json

    from jcsh.runtime.sandbox.grants import Grants
    from jcsh.shell.context import Context
    from jcsh.shell.repl import Repl, open_session

    out, err = io.StringIO(), io.StringIO()
    ctx = Context(home_arg=str(home), out=out, err=err, grants=Grants.of(allow_net="smtp.example.test:587,[::1]"))
    session = open_session(ctx)
    try:
        assert Repl(ctx, session).execute("%sandbox --json") == 0
    finally:
        session.close()
    shown = json.loads(out.getvalue())
    assert shown["grants"] == {
        "config": False,
        "net": ["smtp.example.test:587", "[::1]"],
        "flags": ["--allow-net=smtp.example.test:587,[::1]"],
    }
    assert "process" in shown["layers"]
    assert shown["limits"]["cpu_backstop_seconds"] > shown["limits"]["timeout_seconds"]
