"""IMAP SEARCH and UID SEARCH against the real daemon: flag keys, UNSEEN
after a STORE, header keys (an RFC 2047 subject too), BODY and TEXT (plain
and base64 parts), sizes and dates, OR/NOT/parentheses, sequence and UID
sets, charsets, the ESEARCH answer after ENABLE IMAP4rev2 or with RETURN,
and a hostile nesting answered with BAD."""
import base64
import imaplib
import smtplib
import socket

import pytest

from conftest import Daemon

USER = "alice@example.org"
PW = "secret"

PLAIN = ("From: Alice Smith <alice@remote.example>\r\n"
         f"To: {USER}\r\n"
         "Date: Wed, 1 Jan 2020 10:00:00 +0000\r\n"
         "Subject: Hello world\r\n\r\n"
         "the quick brown fox\r\n")

ENCODED = ("From: bob@remote.example\r\n"
           f"To: {USER}\r\n"
           "Cc: carol@remote.example\r\n"
           "Date: Mon, 1 Mar 2021 10:00:00 +0000\r\n"
           "Subject: =?UTF-8?B?"
           + base64.b64encode("Grüße aus Köln".encode()).decode()
           + "?=\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
           "--b1\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n"
           + base64.b64encode(b"secret penguin words").decode() + "\r\n"
           "--b1\r\n"
           "Content-Type: application/octet-stream\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n"
           + base64.b64encode(b"hidden walrus").decode() + "\r\n"
           "--b1--\r\n")

LARGE = ("From: dave@remote.example\r\n"
         f"To: {USER}\r\n"
         "Subject: Large one\r\n\r\n"
         + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n" * 200)


@pytest.fixture
def imapd(tmp_path):
    d = Daemon(tmp_path)
    d.add_user(USER, PW)
    d.start()
    s = smtplib.SMTP("127.0.0.1", d.ports["smtp"], timeout=10)
    for msg in (PLAIN, ENCODED, LARGE):
        s.sendmail("a@remote.example", [USER], msg.encode())
    s.quit()
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


def login(d):
    m = imaplib.IMAP4("127.0.0.1", d.ports["imap"])
    m.login(USER, PW)
    m.select("INBOX")
    return m


def search(m, *keys, uid=False):
    if uid:
        typ, data = m.uid("SEARCH", *keys)
    else:
        typ, data = m.search(None, *keys)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def test_flags_and_unseen_after_store(imapd):
    m = login(imapd)
    assert search(m, "ALL") == [1, 2, 3]
    assert search(m, "UNSEEN") == [1, 2, 3]
    assert search(m, "SEEN") == []
    m.store("2", "+FLAGS", "(\\Seen \\Flagged $Work)")
    assert search(m, "UNSEEN") == [1, 3]
    assert search(m, "SEEN") == [2]
    assert search(m, "FLAGGED") == [2]
    assert search(m, "KEYWORD", "$work") == [2]
    assert search(m, "UNKEYWORD", "$Work") == [1, 3]
    assert search(m, "RECENT") == [1, 2, 3]
    assert search(m, "NEW") == [1, 3]
    assert search(m, "OLD") == []
    m.logout()


def test_headers(imapd):
    m = login(imapd)
    assert search(m, "FROM", "alice") == [1]
    assert search(m, "FROM", '"alice smith"') == [1]
    assert search(m, "FROM", "REMOTE.EXAMPLE") == [1, 2, 3]
    assert search(m, "TO", USER) == [1, 2, 3]
    assert search(m, "CC", "carol") == [2]
    assert search(m, "SUBJECT", "hello") == [1]
    assert search(m, "SUBJECT", "aus") == [2]
    assert search(m, "HEADER", "MIME-Version", '""') == [2]
    assert search(m, "HEADER", "X-Nothing", '""') == []
    m.logout()


def test_body_and_text(imapd):
    m = login(imapd)
    assert search(m, "BODY", "QUICK") == [1]
    assert search(m, "BODY", "penguin") == [2]
    assert search(m, "BODY", "walrus") == []
    assert search(m, "TEXT", "penguin") == [2]
    assert search(m, "TEXT", "Large") == [3]
    assert search(m, "BODY", "Large") == []
    m.logout()


def test_sizes_and_dates(imapd):
    m = login(imapd)
    assert search(m, "LARGER", "5000") == [3]
    assert search(m, "SMALLER", "5000") == [1, 2]
    assert search(m, "SINCE", "1-Jan-2000") == [1, 2, 3]
    assert search(m, "BEFORE", "1-Jan-2000") == []
    assert search(m, "SINCE", "1-Jan-2100") == []
    assert search(m, "SENTBEFORE", "1-Jan-2021") == [1]
    assert search(m, "SENTON", "1-Mar-2021") == [2]
    assert search(m, "SENTSINCE", "1-Jan-2021") == [2]
    m.logout()


def test_logic_and_sets(imapd):
    m = login(imapd)
    assert search(m, "OR", "FROM", "alice", "LARGER", "5000") == [1, 3]
    assert search(m, "NOT", "FROM", "alice") == [2, 3]
    assert search(m, "(OR SUBJECT hello SUBJECT large)", "NOT", "3") == [1]
    assert search(m, "2:*") == [2, 3]
    assert search(m, "1,3", "SMALLER", "5000") == [1]
    assert search(m, "UID", "2:3") == [2, 3]
    assert search(m, "ALL", uid=True) == [1, 2, 3]
    assert search(m, "UID", "3", uid=True) == [3]
    assert search(m, "BODY", "penguin", uid=True) == [2]
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        m.search(None, "7")
    m.logout()


def test_charsets(imapd):
    m = login(imapd)
    m.literal = "Köln".encode()
    typ, data = m.search("UTF-8", "SUBJECT")
    assert typ == "OK"
    assert data[0].split() == [b"2"]
    typ, data = m.search("US-ASCII", "SUBJECT", "hello")
    assert typ == "OK" and data[0].split() == [b"1"]
    typ, data = m._simple_command("SEARCH", "CHARSET", "KOI8-R", "ALL")
    assert typ == "NO"
    m.logout()


class Raw:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.buf = b""
        assert self.line().startswith("* OK")
        self.cmd("l", f"LOGIN {USER} {PW}")

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def cmd(self, tag, text):
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        lines = []
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                return lines, line
            lines.append(line)


def test_charset_bad_raw(imapd):
    r = Raw(imapd.ports["imap"])
    r.cmd("s", "SELECT INBOX")
    _, tagged = r.cmd("a", "SEARCH CHARSET KOI8-R ALL")
    assert tagged.startswith("a NO [BADCHARSET")


def test_esearch(imapd):
    r = Raw(imapd.ports["imap"])
    lines, _ = r.cmd("c", "CAPABILITY")
    assert " ESEARCH" in lines[0]
    r.cmd("s", "SELECT INBOX")
    lines, tagged = r.cmd("a", "SEARCH RETURN (MIN MAX COUNT) ALL")
    assert tagged.startswith("a OK")
    assert lines == ['* ESEARCH (TAG "a") MIN 1 MAX 3 COUNT 3']
    lines, _ = r.cmd("b", "UID SEARCH RETURN () NOT 2")
    assert lines == ['* ESEARCH (TAG "b") UID ALL 1,3']
    lines, _ = r.cmd("c", "SEARCH RETURN (COUNT ALL) FROM nobody")
    assert lines == ['* ESEARCH (TAG "c") COUNT 0']
    # SEARCHRES (RFC 5182): SAVE alone answers OK with no ESEARCH.
    lines, tagged = r.cmd("d", "SEARCH RETURN (SAVE) ALL")
    assert tagged.startswith("d OK") and lines == []

    r2 = Raw(imapd.ports["imap"])
    r2.cmd("e", "ENABLE IMAP4rev2")
    r2.cmd("s", "SELECT INBOX")
    lines, tagged = r2.cmd("a", "SEARCH SMALLER 5000")
    assert lines == ['* ESEARCH (TAG "a") ALL 1:2']
    _, tagged = r2.cmd("b", "SEARCH RECENT")
    assert tagged.startswith("b BAD")


def test_deep_nesting_is_bad(imapd):
    r = Raw(imapd.ports["imap"])
    r.cmd("s", "SELECT INBOX")
    _, tagged = r.cmd("a", "SEARCH " + "NOT " * 10000 + "ALL")
    assert tagged.startswith("a BAD")
    _, tagged = r.cmd("b", "SEARCH " + "(" * 10000 + "ALL" + ")" * 10000)
    assert tagged.startswith("b BAD")
    lines, tagged = r.cmd("c", "SEARCH ALL")
    assert lines == ["* SEARCH 1 2 3"] and tagged.startswith("c OK")
