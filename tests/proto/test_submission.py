"""Submission (RFC 6409) with STARTTLS and implicit TLS, and AUTH (RFC 4954)."""
import base64
import smtplib

import pytest

from smtputil import RawSMTP, insecure_context, message


@pytest.fixture
def sub(daemon):
    daemon.add_user("alice@example.org", "alice-pw")
    daemon.add_user("bob@example.org", "bob-pw")
    return daemon.start()


def login(d):
    s = smtplib.SMTP("127.0.0.1", d.ports["submission"], timeout=10)
    s.starttls(context=insecure_context())
    s.login("alice@example.org", "alice-pw")
    return s


def test_auth_needs_tls(sub):
    c = RawSMTP(sub.ports["submission"])
    c.reply()
    code, lines = c.cmd("EHLO c")
    assert not any(l.startswith("AUTH") for l in lines)
    code, text = c.cmd("AUTH PLAIN " + base64.b64encode(
        b"\0alice@example.org\0alice-pw").decode())
    assert code == 530
    code, _ = c.cmd("MAIL FROM:<alice@example.org>")
    assert code == 530


def test_send_after_starttls_login(sub):
    with login(sub) as s:
        s.sendmail("alice@example.org", ["bob@example.org"],
                   message(sender="alice@example.org", to="bob@example.org"))
    data = open(sub.messages("bob@example.org")[0], "rb").read()
    assert b"with ESMTPSA" in data


def test_implicit_tls_login_plain(sub):
    with smtplib.SMTP_SSL("127.0.0.1", sub.ports["submissions"],
                          context=insecure_context(), timeout=10) as s:
        s.ehlo("c")
        assert "PLAIN" in s.esmtp_features["auth"]
        assert "LOGIN" in s.esmtp_features["auth"]
        s.login("alice@example.org", "alice-pw")
        s.sendmail("alice@example.org", ["alice@example.org"],
                   message(sender="alice@example.org"))
    assert len(sub.messages("alice@example.org")) == 1


def test_auth_login_mechanism(sub):
    c = RawSMTP(sub.ports["submissions"], tls=True)
    c.reply()
    c.cmd("EHLO c")
    code, _ = c.cmd("AUTH LOGIN")
    assert code == 334
    code, _ = c.cmd(base64.b64encode(b"alice@example.org").decode())
    assert code == 334
    code, text = c.cmd(base64.b64encode(b"alice-pw").decode())
    assert code == 235, text


def test_wrong_password(sub):
    s = smtplib.SMTP("127.0.0.1", sub.ports["submission"], timeout=20)
    s.starttls(context=insecure_context())
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.login("alice@example.org", "Wr0ng-Pa55")
    assert e.value.smtp_code == 535
    s.close()
    assert "alice-pw" not in sub.log() and "Wr0ng-Pa55" not in sub.log()


def test_auth_cancel(sub):
    c = RawSMTP(sub.ports["submissions"], tls=True)
    c.reply()
    c.cmd("EHLO c")
    assert c.cmd("AUTH PLAIN")[0] == 334
    assert c.cmd("*")[0] == 501


def test_mail_from_must_belong_to_user(sub):
    with login(sub) as s:
        code, text = s.docmd("MAIL FROM:<bob@example.org>")
        assert code == 553 and text.startswith(b"5.7.1")


def test_from_header_must_belong_to_user(sub):
    with login(sub) as s:
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("alice@example.org", ["bob@example.org"],
                       message(sender="bob@example.org"))
        assert e.value.smtp_code == 553
    assert sub.messages("bob@example.org") == []


def test_mail_before_auth(sub):
    s = smtplib.SMTP("127.0.0.1", sub.ports["submission"], timeout=10)
    s.starttls(context=insecure_context())
    s.ehlo("c")
    code, _ = s.docmd("MAIL FROM:<alice@example.org>")
    assert code == 530
    s.close()


def test_swaks_submission(sub):
    import subprocess
    r = subprocess.run(["swaks", "--server", "127.0.0.1",
                        "--port", str(sub.ports["submission"]), "--tls",
                        "--auth", "PLAIN", "--auth-user", "alice@example.org",
                        "--auth-password", "alice-pw",
                        "--from", "alice@example.org",
                        "--to", "bob@example.org"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert len(sub.messages("bob@example.org")) == 1
