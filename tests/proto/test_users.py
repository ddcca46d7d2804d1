"""`pushmaild user ...` and the running daemon's view of the users file."""
import smtplib

import pytest

from smtputil import message


def test_user_commands(daemon):
    daemon.add_user("alice@example.org", "pw1")
    daemon.add_user("Bob@Example.org", "pw2")
    out = daemon.cli("user", "list").stdout.decode().split()
    assert out == ["alice@example.org", "bob@example.org"]
    r = daemon.cli("user", "add", "alice@example.org", stdin=b"x",
                   check=False)
    assert r.returncode != 0
    text = open(daemon.data + "/users").read()
    assert "pw1" not in text and "{CRYPT}$y$" in text
    daemon.cli("user", "passwd", "alice@example.org", stdin=b"pw3")
    daemon.cli("user", "del", "bob@example.org")
    out = daemon.cli("user", "list").stdout.decode().split()
    assert out == ["alice@example.org"]
    r = daemon.cli("user", "del", "nobody@example.org", check=False)
    assert r.returncode != 0


def test_daemon_sees_user_changes(daemon):
    daemon.add_user("alice@example.org")
    daemon.start()
    port = daemon.ports["smtp"]
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.ehlo("c")
        s.mail("x@r.example")
        assert s.rcpt("carol@example.org")[0] == 550
    daemon.add_user("carol@example.org")
    daemon.wait_log("event=users changed=carol@example.org")
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.sendmail("x@r.example", ["carol@example.org"], message())
    pos = len(daemon.log())
    daemon.cli("user", "del", "carol@example.org")
    daemon.wait_log("event=users changed=carol@example.org", start=pos)
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.ehlo("c")
        s.mail("x@r.example")
        for _ in range(50):
            if s.rcpt("carol@example.org")[0] == 550:
                break
        else:
            pytest.fail("deleted user still accepted")


def test_aliases(daemon):
    daemon.add_user("alice@example.org")
    daemon.add_user("bob@example.org")
    with open(daemon.data + "/aliases", "w") as f:
        f.write("team@example.org: alice@example.org, bob@example.org\n"
                "postmaster@example.org: bob@example.org\n")
    daemon.start()
    with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"]) as s:
        s.sendmail("x@r.example", ["team@example.org"], message())
        s.sendmail("x@r.example", ["POSTMASTER@example.org"], message())
    assert len(daemon.messages("alice@example.org")) == 1
    assert len(daemon.messages("bob@example.org")) == 2


def test_check_config(daemon, tmp_path):
    assert daemon.cli("check-config").returncode == 0
    bad = tmp_path / "bad.conf"
    bad.write_text("data_dir = x\n[listener a]\nprotocol = smtp\n"
                   "address = 127.0.0.1:1\nbogus = 1\n")
    from conftest import PUSHMAILD
    import subprocess
    r = subprocess.run([PUSHMAILD, "-c", str(bad), "check-config"],
                       capture_output=True)
    assert r.returncode != 0
    assert f"{bad}:5: unknown key" in r.stderr.decode()


def test_check_config_reads_users_file(daemon):
    daemon.add_user("alice@example.org")
    with open(daemon.data + "/users", "a") as f:
        f.write("not a user line\n")
    r = daemon.cli("check-config", check=False)
    assert r.returncode == 78
    assert "users:2:" in r.stderr.decode()


def test_password_change_reaches_running_daemon(daemon):
    import smtplib as _s
    from smtputil import insecure_context

    def login(pw):
        with _s.SMTP_SSL("127.0.0.1", daemon.ports["submissions"],
                         context=insecure_context(), timeout=30) as s:
            s.ehlo("c")
            try:
                s.auth("PLAIN", lambda challenge=None:
                       f"\0alice@example.org\0{pw}")
                return True
            except _s.SMTPAuthenticationError:
                return False

    daemon.add_user("alice@example.org", "old-pw")
    daemon.start()
    assert login("old-pw")          # verified, and now cached
    pos = len(daemon.log())
    daemon.cli("user", "passwd", "alice@example.org", stdin=b"new-pw")
    daemon.wait_log("event=users changed=alice@example.org", start=pos)
    assert not login("old-pw")      # the cached credential was forgotten
    assert login("new-pw")
