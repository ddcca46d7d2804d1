"""MULTIAPPEND (RFC 3502) against the real daemon, spoken raw because
imaplib sends one message per APPEND: three messages in one command with
one APPENDUID uid-set, a bad message in the middle (or a zero-length one)
appending none, keywords kept and listed in FLAGS and PERMANENTFLAGS, a
literal over APPENDLIMIT refused before "+" in a later message, literal8
messages, and CHECK."""
import re
import socket

import pytest

from conftest import Daemon

USER = "alice@example.org"
PW = "secret"


def msg(n):
    return (b"From: a@example.org\r\nTo: b@example.org\r\n"
            b"Subject: batch %d\r\n\r\nBody %d\r\n" % (n, n))


@pytest.fixture
def imapd(tmp_path):
    d = Daemon(tmp_path)
    d.add_user(USER, PW)
    d.start()
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


class Raw:
    """A line-oriented IMAP connection that sends synchronising literals
    the way the protocol says: announce, wait for "+", send."""

    def __init__(self, d):
        self.sock = socket.create_connection(("127.0.0.1", d.ports["imap"]),
                                             10)
        self.f = self.sock.makefile("rb")
        assert self.f.readline().startswith(b"* OK")
        self.cmd(b"l", b"LOGIN %s %s" % (USER.encode(), PW.encode()))

    def until(self, tag):
        lines = []
        while True:
            line = self.f.readline()
            assert line, "connection closed"
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def cmd(self, tag, text):
        self.sock.sendall(tag + b" " + text + b"\r\n")
        lines = self.until(tag)
        assert lines[-1].startswith(tag + b" OK"), lines
        return lines

    def append(self, tag, parts):
        """parts: bytes of the command line, each message announced with
        a {n} that is sent only after the server's "+"; returns the
        tagged line, or the first line that was not "+"."""
        head = tag + b" APPEND"
        pending = None
        for p in parts:
            if isinstance(p, tuple):
                prefix, data = p
                self.sock.sendall(head + b" " + prefix + b"{%d}\r\n"
                                  % len(data))
                line = self.f.readline()
                if not line.startswith(b"+"):
                    return line
                pending = data
                head = pending
            else:
                head += b" " + p
        self.sock.sendall(head + b"\r\n")
        return self.until(tag)[-1]

    def close(self):
        self.sock.close()


def test_three_messages_one_appenduid(imapd):
    c = Raw(imapd)
    line = c.append(b"a", [b"INBOX", (br"(\Seen) ", msg(1)),
                           (b'"05-Mar-2024 10:11:12 +0100" ', msg(2)),
                           (br"(\Flagged $Work) ", msg(3))])
    m = re.match(rb"a OK \[APPENDUID (\d+) 1:3\]", line)
    assert m, line
    lines = c.cmd(b"s", b"SELECT INBOX")
    assert b"* 3 EXISTS\r\n" in lines
    lines = c.cmd(b"f", b"UID FETCH 1:3 (FLAGS INTERNALDATE)")
    text = b"".join(lines)
    assert re.search(rb"UID 1 FLAGS \(\\Seen", text), text
    assert b'05-Mar-2024 09:11:12 +0000' in text, text
    assert re.search(rb"UID 3 FLAGS \(\\Flagged \$Work", text), text
    lines = c.cmd(b"b", b"UID FETCH 2 BODY.PEEK[]")
    assert msg(2) in b"".join(lines)
    c.close()
    # Flagged messages went to cur/, the one without flags to new/.
    assert len(imapd.messages(USER)) == 1
    assert len(imapd.messages(USER, "cur")) == 2


def test_bad_message_in_middle_appends_none(imapd):
    c = Raw(imapd)
    line = c.append(b"a", [b"INBOX", (b"", msg(1)),
                           (br"(\Bogus) ", msg(2)), (b"", msg(3))])
    # The flag is only seen once the whole command has arrived.
    assert line.startswith(b"a BAD"), line
    line = c.append(b"b", [b"INBOX", (b"", msg(1)), (b"", b""),
                           (b"", msg(3))])
    assert line.startswith(b"b NO"), line
    line = c.append(b"c", [b"INBOX", (b"", msg(1)),
                           (b'"31-Foo-2024 10:11:12 +0100" ', msg(2))])
    assert line.startswith(b"c BAD"), line
    lines = c.cmd(b"s", b"STATUS INBOX (MESSAGES UIDNEXT)")
    assert b"MESSAGES 0 UIDNEXT 1" in b"".join(lines), lines
    c.close()
    assert imapd.messages(USER) == [] and imapd.messages(USER, "cur") == []


def test_toobig_in_later_message_before_continuation(imapd):
    c = Raw(imapd)
    c.sock.sendall(b"a APPEND INBOX {%d}\r\n" % len(msg(1)))
    assert c.f.readline().startswith(b"+")
    c.sock.sendall(msg(1) + b" {67108865}\r\n")
    line = c.f.readline()
    assert line.startswith(b"a NO [TOOBIG]"), line
    lines = c.cmd(b"s", b"STATUS INBOX (MESSAGES)")
    assert b"MESSAGES 0" in b"".join(lines)
    c.close()


def test_keywords_kept_and_listed(imapd):
    c = Raw(imapd)
    line = c.append(b"a", [b"INBOX", (b"($Label1 Project) ", msg(1)),
                           (b"(project $label1 Other) ", msg(2))])
    assert re.match(rb"a OK \[APPENDUID \d+ 1:2\]", line), line
    lines = c.cmd(b"s", b"SELECT INBOX")
    flags = [x for x in lines if x.startswith(b"* FLAGS")][0]
    for kw in (b"$Label1", b"Project", b"Other"):
        assert kw in flags, flags
    # One spelling per keyword in the mailbox (RFC 3501 section 2.3.2).
    assert b"project" not in flags and b"$label1" not in flags
    lines = c.cmd(b"f", b"UID FETCH 1:2 FLAGS")
    text = b"".join(lines)
    assert re.search(rb"UID 2 FLAGS \([^)]*Project", text), text
    assert re.search(rb"UID 2 FLAGS \([^)]*Other", text), text
    lines = c.cmd(b"k", b"UID SEARCH KEYWORD Other")
    assert b"* SEARCH 2" in b"".join(lines), lines
    lines = c.cmd(b"c", b"CHECK")
    assert lines[-1] == b"c OK CHECK completed\r\n"
    c.close()


def test_keywords_seen_by_selected_session(imapd):
    watcher = Raw(imapd)
    watcher.cmd(b"s", b"SELECT INBOX")
    c = Raw(imapd)
    line = c.append(b"a", [b"INBOX", (b"(Fresh) ", msg(1))])
    assert line.startswith(b"a OK"), line
    lines = watcher.cmd(b"n", b"NOOP")
    text = b"".join(lines)
    assert b"* 1 EXISTS" in text, text
    lines = watcher.cmd(b"f", b"FETCH 1 FLAGS")
    assert b"Fresh" in b"".join(lines)
    watcher.close()
    c.close()


def test_literal8_messages(imapd):
    c = Raw(imapd)
    body = b"Subject: bin\r\n\r\nzero\x00byte\r\n"
    c.sock.sendall(b"a APPEND INBOX ~{%d}\r\n" % len(body))
    assert c.f.readline().startswith(b"+")
    c.sock.sendall(body + b" ~{%d+}\r\n" % len(msg(2)) + msg(2) + b"\r\n")
    line = c.until(b"a")[-1]
    assert re.match(rb"a OK \[APPENDUID \d+ 1:2\]", line), line
    # A plain literal may not hold NUL.
    c.sock.sendall(b"b APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
    assert c.until(b"b")[-1].startswith(b"b BAD")
    c.close()


def test_check_needs_selected_state(imapd):
    c = Raw(imapd)
    c.sock.sendall(b"c CHECK\r\n")
    assert c.until(b"c")[-1].startswith(b"c BAD")
    c.cmd(b"s", b"SELECT INBOX")
    assert c.cmd(b"d", b"CHECK")[-1] == b"d OK CHECK completed\r\n"
    c.close()


def test_over_quota_appends_none(tmp_path):
    d = Daemon(tmp_path)
    d.add_user(USER, PW)
    path = d.data + "/users"
    lines = []
    for line in open(path).read().splitlines():
        if line.startswith(USER + ":"):
            fields = line.split(":")
            fields += [""] * (8 - len(fields))
            fields[7] = "quota=1K"
            line = ":".join(fields)
        lines.append(line)
    open(path, "w").write("\n".join(lines) + "\n")
    d.start()
    try:
        c = Raw(d)
        # Each fits alone; together they do not.
        big = msg(1) + b"x" * 400 + b"\r\n"
        line = c.append(b"a", [b"INBOX", (b"", big), (b"", big),
                               (b"", big)])
        assert line.startswith(b"a NO [OVERQUOTA]"), line
        lines = c.cmd(b"s", b"STATUS INBOX (MESSAGES UIDNEXT)")
        assert b"MESSAGES 0 UIDNEXT 1" in b"".join(lines), lines
        line = c.append(b"b", [b"INBOX", (b"", big), (b"", big)])
        assert re.match(rb"b OK \[APPENDUID \d+ 1:2\]", line), line
        c.close()
        assert len(d.messages(USER)) == 2
    finally:
        d.check_clean_exit(d.stop())


def test_utf8_append_data(imapd):
    c = Raw(imapd)
    c.cmd(b"e", b"ENABLE UTF8=ACCEPT")
    body = "Subject: gr\u00fc\u00dfe\r\n\r\nHall\u00f6\r\n".encode()
    c.sock.sendall(b"a APPEND INBOX (\\Seen) UTF8 (~{%d}\r\n" % len(body))
    assert c.f.readline().startswith(b"+")
    c.sock.sendall(body + b") UTF8 (~{%d+}\r\n" % len(msg(2)) + msg(2)
                   + b")\r\n")
    line = c.until(b"a")[-1]
    assert re.match(rb"a OK \[APPENDUID \d+ 1:2\]", line), line
    c.cmd(b"s", b"SELECT INBOX")
    lines = c.cmd(b"f", b"UID FETCH 1 BODY.PEEK[]")
    assert body in b"".join(lines)
    c.close()
