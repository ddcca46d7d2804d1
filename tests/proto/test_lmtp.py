"""LMTP (RFC 2033): one reply per accepted recipient, local delivery agent."""
import smtplib
import subprocess

import pytest

from conftest import PUSHMAILD
from smtputil import RawSMTP, message


@pytest.fixture
def lmtp(daemon):
    daemon.add_user("alice@example.org")
    daemon.add_user("bob@example.org")
    return daemon.start()


def test_one_reply_per_recipient(lmtp):
    c = RawSMTP(lmtp.ports["lmtp"])
    assert c.reply()[0] == 220
    assert c.cmd("EHLO c")[0] == 500
    assert c.cmd("LHLO c")[0] == 250
    assert c.cmd("MAIL FROM:<x@r.example>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<ghost@example.org>")[0] == 550
    assert c.cmd("RCPT TO:<bob@example.org>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: l\r\n\r\nbody\r\n.\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    assert c.cmd("QUIT")[0] == 221
    assert len(lmtp.messages("alice@example.org")) == 1
    assert len(lmtp.messages("bob@example.org")) == 1


def test_smtplib_lmtp(lmtp):
    s = smtplib.LMTP("127.0.0.1", lmtp.ports["lmtp"])
    refused = s.sendmail("x@r.example", ["alice@example.org"], message())
    assert refused == {}
    s.quit()
    assert len(lmtp.messages("alice@example.org")) == 1


def test_lmtp_bdat_last(lmtp):
    c = RawSMTP(lmtp.ports["lmtp"])
    c.reply()
    c.cmd("LHLO c")
    c.cmd("MAIL FROM:<x@r.example>")
    c.cmd("RCPT TO:<alice@example.org>")
    c.cmd("RCPT TO:<bob@example.org>")
    body = b"Subject: b\r\n\r\nbinary\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(body) + body)
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250


def test_lmtp_quota_per_recipient(daemon):
    daemon.add_user("alice@example.org")
    daemon.cli("user", "add", "tiny@example.org", stdin=b"pw")
    path = daemon.data + "/users"
    lines = [l + "::::::quota=1K" if l.startswith("tiny@") else l
             for l in open(path).read().splitlines()]
    open(path, "w").write("\n".join(lines) + "\n")
    daemon.start()
    c = RawSMTP(daemon.ports["lmtp"])
    c.reply()
    c.cmd("LHLO c")
    c.cmd("MAIL FROM:<x@r.example>")
    c.cmd("RCPT TO:<alice@example.org>")
    c.cmd("RCPT TO:<tiny@example.org>")
    c.cmd("DATA")
    c.send("Subject: q\r\n\r\n" + "x" * 3000 + "\r\n.\r\n")
    assert c.reply()[0] == 250
    code, text = c.reply()
    assert code == 552 and text[0].startswith("5.2.2")
    assert len(daemon.messages("alice@example.org")) == 1
    assert daemon.messages("tiny@example.org") == []


def deliver(d, *rcpts, msg=b"Subject: d\n\nlocal delivery\n"):
    return subprocess.run([PUSHMAILD, "-c", d.conf, "deliver", "-f",
                           "root@localhost", *rcpts],
                          input=msg, capture_output=True, timeout=60)


def test_deliver_through_running_daemon(lmtp):
    r = deliver(lmtp, "alice@example.org")
    assert r.returncode == 0, r.stderr
    data = open(lmtp.messages("alice@example.org")[0], "rb").read()
    assert b"with LMTP" in data
    assert data.endswith(b"\r\nlocal delivery\r\n")
    r = deliver(lmtp, "ghost@example.org")
    assert r.returncode == 67, r.stderr


def test_deliver_without_daemon(daemon):
    daemon.add_user("alice@example.org")
    r = deliver(daemon, "alice@example.org")
    assert r.returncode == 0, r.stderr
    files = daemon.messages("alice@example.org")
    assert len(files) == 1
    assert open(files[0], "rb").read().startswith(
        b"Return-Path: <root@localhost>\r\n")
    assert deliver(daemon, "ghost@example.org").returncode == 67
    # The daemon starts on top of what deliver wrote, and UIDs go on.
    daemon.start()
    assert deliver(daemon, "alice@example.org").returncode == 0
    names = sorted(daemon.messages("alice@example.org"))
    assert any(",U=2," in n for n in names), names
