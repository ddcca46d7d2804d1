"""Size, quota and time limits of SMTP sessions, and a full disk."""
import smtplib
import time

import pytest

from smtputil import RawSMTP, message


def start(d, extra, users=("alice@example.org",)):
    d.write_config(extra)
    for u in users:
        d.add_user(u)
    return d.start()


def test_message_size_limit(daemon):
    start(daemon, "max_message_size = 10K")
    with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"]) as s:
        s.ehlo("c")
        assert s.has_extn("size")
        assert s.esmtp_features["size"] == str(10 * 1024)
        code, text = s.docmd("MAIL FROM:<x@r.example> SIZE=20000")
        assert code == 552 and text.startswith(b"5.3.4")
        s.rset()
        s.mail("x@r.example")
        s.rcpt("alice@example.org")
        code, text = s.data(message(body="z" * 20000 + "\r\n"))
        assert code == 552 and text.startswith(b"5.3.4")
        # The session survives and still delivers a small message.
        s.sendmail("x@r.example", ["alice@example.org"], message())
    assert len(daemon.messages("alice@example.org")) == 1


def test_quota_exceeded(daemon):
    daemon.write_config("")
    daemon.cli("user", "add", "small@example.org", stdin=b"pw")
    # Give the user a tiny quota through the users file's extra field.
    path = daemon.data + "/users"
    text = open(path).read().replace(
        "small@example.org:", "small@example.org:", 1)
    lines = []
    for line in text.splitlines():
        if line.startswith("small@example.org:"):
            fields = line.split(":")
            fields += [""] * (8 - len(fields))
            fields[7] = "quota=2K"
            line = ":".join(fields)
        lines.append(line)
    open(path, "w").write("\n".join(lines) + "\n")
    daemon.start()
    with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"]) as s:
        s.sendmail("x@r.example", ["small@example.org"], message())
        s.mail("x@r.example")
        s.rcpt("small@example.org")
        code, text = s.data(message(body="q" * 4000 + "\r\n"))
        assert code == 552 and text.startswith(b"5.2.2"), (code, text)
    assert len(daemon.messages("small@example.org")) == 1


def test_client_stalls_mid_data(daemon):
    start(daemon, "smtp_data_timeout = 1s")
    c = RawSMTP(daemon.ports["smtp"])
    c.reply()
    c.cmd("EHLO c")
    c.cmd("MAIL FROM:<x@r.example>")
    c.cmd("RCPT TO:<alice@example.org>")
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: half\r\n\r\nsome text but no end")
    time.sleep(1.5)
    assert c.closed(timeout=5)
    assert daemon.messages("alice@example.org") == []
    # Other sessions are unaffected.
    with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"]) as s:
        s.sendmail("x@r.example", ["alice@example.org"], message())
    assert len(daemon.messages("alice@example.org")) == 1


def test_idle_timeout(daemon):
    start(daemon, "smtp_timeout = 1s")
    c = RawSMTP(daemon.ports["smtp"])
    c.reply()
    code, text = c.reply()
    assert code == 421 and text[0].startswith("4.4.2")


def test_bare_lf_normalize_option(daemon):
    start(daemon, "smtp_bare_lf = normalize")
    c = RawSMTP(daemon.ports["smtp"])
    c.reply()
    c.cmd("EHLO c")
    c.cmd("MAIL FROM:<x@r.example>")
    c.cmd("RCPT TO:<alice@example.org>")
    c.cmd("DATA")
    c.send(b"Subject: n\r\n\r\none\ntwo\r\n.\r\n")
    assert c.reply()[0] == 250
    data = open(daemon.messages("alice@example.org")[0], "rb").read()
    assert data.endswith(b"\r\none\r\ntwo\r\n")
