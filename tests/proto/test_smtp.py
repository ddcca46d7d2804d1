"""SMTP (RFC 5321) on the inbound listener, driven by smtplib and by hand."""
import os
import smtplib
import sqlite3
import subprocess

import pytest

from smtputil import RawSMTP, message


@pytest.fixture
def mx(daemon):
    daemon.add_user("alice@example.org")
    daemon.add_user("bob@example.org")
    daemon.start()
    return daemon


def smtp(d):
    return smtplib.SMTP("127.0.0.1", d.ports["smtp"], timeout=10)


def rows(d, user):
    d.release_index()
    db = sqlite3.connect(os.path.join(d.user_dir(user), "pushmail.sqlite"))
    try:
        return db.execute("SELECT uid, size FROM message ORDER BY uid"
                          ).fetchall()
    finally:
        db.close()


def test_delivers_with_trace_fields(mx):
    with smtp(mx) as s:
        s.ehlo("client.example")
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes",
                    "smtputf8", "chunking", "starttls"):
            assert s.has_extn(ext), ext
        assert not s.has_extn("auth")
        s.sendmail("sender@remote.example", ["alice@example.org"], message())
    files = mx.messages("alice@example.org")
    assert len(files) == 1
    data = open(files[0], "rb").read()
    assert data.startswith(b"Return-Path: <sender@remote.example>\r\n"
                           b"Delivered-To: alice@example.org\r\n")
    assert b"\r\nReceived: from client.example" in data
    assert b"by mx.test.example" in data
    assert data.endswith(b"Hello.\r\n")
    (uid, size), = rows(mx, "alice@example.org")
    assert uid == 1 and size == len(data)
    assert f",U=1,S={len(data)}" in files[0]


def test_several_recipients_one_reply(mx):
    with smtp(mx) as s:
        refused = s.sendmail("x@remote.example",
                             ["alice@example.org", "BOB@Example.ORG"],
                             message())
        assert refused == {}
    assert len(mx.messages("alice@example.org")) == 1
    assert len(mx.messages("bob@example.org")) == 1


def test_recipient_checks(mx):
    with smtp(mx) as s:
        s.ehlo("c")
        s.mail("x@remote.example")
        code, text = s.rcpt("nobody@example.org")
        assert code == 550 and text.startswith(b"5.1.1")
        code, text = s.rcpt("someone@elsewhere.example")
        assert code == 550 and text.startswith(b"5.7.1")
        code, _ = s.rcpt("postmaster@example.org")
        assert code == 250
        code, _ = s.rcpt("<postmaster>")
        assert code == 250


def test_vrfy_noop_rset_help(mx):
    with smtp(mx) as s:
        assert s.verify("alice@example.org")[0] == 252
        assert s.noop()[0] == 250
        assert s.rset()[0] == 250
        assert s.docmd("HELP")[0] == 214


def test_order_errors(mx):
    c = RawSMTP(mx.ports["smtp"])
    assert c.reply()[0] == 220
    assert c.cmd("RCPT TO:<alice@example.org>")[0] == 503
    assert c.cmd("EHLO c")[0] == 250
    assert c.cmd("DATA")[0] == 503
    assert c.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    assert c.cmd("MAIL FROM:<x@remote.example>")[0] == 503
    assert c.cmd("DATA")[0] == 503
    assert c.cmd("QUIT")[0] == 221


def test_long_command_line(mx):
    c = RawSMTP(mx.ports["smtp"])
    c.reply()
    code, text = c.cmd("NOOP " + "x" * 5000)
    assert code == 500 and text[0].startswith("5.5.2")
    assert c.cmd("NOOP")[0] == 250


def test_unknown_commands_close_after_ten(mx):
    c = RawSMTP(mx.ports["smtp"])
    c.reply()
    codes = [c.cmd("FOO")[0] for _ in range(9)]
    assert codes == [500] * 9
    assert c.cmd("FOO")[0] == 421
    assert c.closed()


def test_too_many_recipients(mx):
    c = RawSMTP(mx.ports["smtp"])
    c.reply()
    c.cmd("EHLO c")
    c.cmd("MAIL FROM:<x@remote.example>")
    codes = [c.cmd("RCPT TO:<alice@example.org>")[0] for _ in range(101)]
    assert codes[:100] == [250] * 100
    code, text = c.cmd("RCPT TO:<bob@example.org>")
    assert code == 452 and text[0].startswith("4.5.3")


def test_pipelined_transaction(mx):
    c = RawSMTP(mx.ports["smtp"])
    c.reply()
    c.cmd("EHLO c")
    c.send("MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@example.org>\r\n"
           "RCPT TO:<nobody@example.org>\r\nDATA\r\n")
    assert [c.reply()[0] for _ in range(4)] == [250, 250, 550, 354]
    c.send("Subject: p\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    assert c.reply()[0] == 221
    assert len(mx.messages("alice@example.org")) == 1


def test_dot_stuffing(mx):
    body = "..leading dot\r\n.\r\n"
    c = RawSMTP(mx.ports["smtp"])
    c.reply()
    c.cmd("EHLO c")
    c.cmd("MAIL FROM:<x@remote.example>")
    c.cmd("RCPT TO:<alice@example.org>")
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: d\r\n\r\n" + body)
    assert c.reply()[0] == 250
    data = open(mx.messages("alice@example.org")[0], "rb").read()
    assert data.endswith(b"\r\n.leading dot\r\n")


@pytest.mark.parametrize("smuggle", [
    b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r",
])
def test_smuggling_is_refused(mx, smuggle):
    c = RawSMTP(mx.ports["smtp"])
    c.reply()
    c.cmd("EHLO c")
    c.cmd("MAIL FROM:<x@remote.example>")
    c.cmd("RCPT TO:<alice@example.org>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: s\r\n\r\nfirst" + smuggle +
           b"MAIL FROM:<evil@remote.example>\r\n"
           b"RCPT TO:<bob@example.org>\r\nDATA\r\n"
           b"Subject: smuggled\r\n\r\nx\r\n.\r\n")
    code, text = c.reply()
    assert code == 550 and text[0].startswith("5.5.2"), (code, text)
    # The session goes on, and nothing of the body became a command.
    assert c.cmd("NOOP")[0] == 250
    assert mx.messages("alice@example.org") == []
    assert mx.messages("bob@example.org") == []


def test_long_body_lines_accepted(mx):
    with smtp(mx) as s:
        s.sendmail("x@remote.example", ["alice@example.org"],
                   message(body="y" * 5000 + "\r\n"))
    assert len(mx.messages("alice@example.org")) == 1


def test_invalid_utf8_address(mx):
    c = RawSMTP(mx.ports["smtp"])
    c.reply()
    c.cmd("EHLO c")
    c.send(b"MAIL FROM:<\xff\xfe@remote.example>\r\n")
    assert c.reply()[0] in (501, 553)
    c.send("MAIL FROM:<jörg@remote.example>\r\n".encode())
    assert c.reply()[0] == 553
    code, _ = c.cmd("MAIL FROM:<x@remote.example> SMTPUTF8")
    assert code == 250
    c.send("RCPT TO:<alice@example.org>\r\n".encode())
    assert c.reply()[0] == 250


def test_bdat(mx):
    c = RawSMTP(mx.ports["smtp"])
    c.reply()
    c.cmd("EHLO c")
    c.cmd("MAIL FROM:<x@remote.example>")
    c.cmd("RCPT TO:<alice@example.org>")
    part1 = b"Subject: chunked\r\n\r\n"
    part2 = b"line one\r\n.\r\nline \x00two\r\n"
    c.send(b"BDAT %d\r\n" % len(part1) + part1)
    assert c.reply()[0] == 250
    c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    assert c.reply()[0] == 250
    data = open(mx.messages("alice@example.org")[0], "rb").read()
    assert data.endswith(part1 + part2)


def test_bdat_then_data_is_refused(mx):
    c = RawSMTP(mx.ports["smtp"])
    c.reply()
    c.cmd("EHLO c")
    c.cmd("MAIL FROM:<x@remote.example>")
    c.cmd("RCPT TO:<alice@example.org>")
    c.send(b"BDAT 3\r\nabc")
    assert c.reply()[0] == 250
    assert c.cmd("DATA")[0] == 503


def test_swaks_delivery(mx):
    r = subprocess.run(["swaks", "--server", "127.0.0.1",
                        "--port", str(mx.ports["smtp"]),
                        "--to", "alice@example.org",
                        "--from", "sender@remote.example",
                        "--helo", "swaks.example"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert len(mx.messages("alice@example.org")) == 1


def test_swaks_starttls(mx):
    r = subprocess.run(["swaks", "--server", "127.0.0.1",
                        "--port", str(mx.ports["smtp"]), "--tls",
                        "--to", "bob@example.org",
                        "--from", "sender@remote.example"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    data = open(mx.messages("bob@example.org")[0], "rb").read()
    assert b"with ESMTPS" in data
