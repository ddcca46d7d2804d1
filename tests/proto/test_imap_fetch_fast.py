"""The FETCH fast path (UID, FLAGS and MODSEQ answered from the shared view,
src/imap/imap_fetch.c) against the real daemon: its lines must be byte for
byte those of the store path, which a FETCH that also asks RFC822.SIZE
takes (the size item removed), for FETCH, UID FETCH, keywords, \\Recent,
withheld expunges, CONDSTORE MODSEQ, CHANGEDSINCE and QRESYNC VANISHED;
a 5,000-message FETCH while another session expunges and flags; and a
client that does not read, while other sessions go on working."""
import re
import select
import socket
import time

import pytest

from conftest import Daemon

USER = "alice@example.org"
PW = "secret"
SIZE_RE = re.compile(rb" RFC822\.SIZE \d+")
FLAGS_LINE_RE = re.compile(rb"^\* (\d+) FETCH \(UID (\d+) FLAGS \(([^)]*)\)"
                           rb"\)\r\n$")


class Raw:
    """A byte-level IMAP client on a plain socket, logged in."""

    def __init__(self, d, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(60)
        self.sock.connect(("127.0.0.1", d.ports["imap"]))
        self.buf = b""
        assert self.line().startswith(b"* OK")
        self.ok(b"l", b"LOGIN %s %s" % (USER.encode(), PW.encode()))

    def line(self):
        """One line with its CRLF."""
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def send(self, tag, text):
        self.sock.sendall(tag + b" " + text + b"\r\n")

    def until(self, tag):
        """The untagged lines, and the tagged one."""
        lines = []
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                return lines, line
            lines.append(line)

    def ok(self, tag, text):
        self.send(tag, text)
        lines, tagged = self.until(tag)
        assert tagged.startswith(tag + b" OK"), (lines[-5:], tagged)
        return lines

    def close(self):
        self.sock.close()


def msg(n):
    return (b"From: a@example.org\r\nTo: %s\r\nSubject: m%d\r\n\r\n"
            b"Body %d\r\n" % (USER.encode(), n, n))


def append(c, first, count, flags=lambda n: b""):
    """MULTIAPPENDs count messages (LITERAL+), 1,000 per command."""
    n = first
    while n < first + count:
        last = min(first + count, n + 1000)
        parts = []
        for k in range(n, last):
            data = msg(k)
            parts.append(b"(%s) {%d+}\r\n" % (flags(k), len(data)) + data)
        c.ok(b"a", b"APPEND INBOX " + b" ".join(parts))
        n = last


def some_flags(n):
    """A mix of system flags and keywords by message number."""
    out = []
    if n % 2:
        out.append(b"\\Seen")
    if n % 3 == 0:
        out.append(b"\\Flagged")
    if n % 5 == 0:
        out.append(b"$Forwarded")
    if n % 7 == 0:
        out += [b"\\Answered", b"proj-x"]
    return b" ".join(out)


@pytest.fixture
def imapd(tmp_path):
    d = Daemon(tmp_path)
    d.add_user(USER, PW)
    d.start()
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


def same(c, tag, cmd, items, mods=b"", noop=True):
    """Asks cmd with items (fast path) and with items plus RFC822.SIZE
    (store path); the lines must agree once the size is removed. A NOOP
    first takes the pending news, unless noop is false."""
    if noop:
        c.ok(tag + b"n", b"NOOP")
    fast = c.ok(tag + b"f", b"%s (%s)%s" % (cmd, items, mods))
    slow = c.ok(tag + b"s", b"%s (%s RFC822.SIZE)%s" % (cmd, items, mods))
    assert [SIZE_RE.sub(b"", l) for l in slow] == fast
    return fast


def test_flags_uid_keywords_recent(imapd):
    c = Raw(imapd)
    append(c, 1, 40, some_flags)
    c.ok(b"s", b"SELECT INBOX")
    # Messages after the SELECT are \Recent for this session.
    d = Raw(imapd)
    append(d, 41, 5, some_flags)
    c.ok(b"n", b"NOOP")
    lines = same(c, b"a", b"FETCH 1:*", b"FLAGS")
    assert len(lines) == 45
    assert lines[0] == b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))\r\n"
    assert lines[34].startswith(b"* 35 FETCH (UID 35 FLAGS (\\Seen "
                                b"\\Answered ")
    assert b" $Forwarded" in lines[34] and b" proj-x" in lines[34]
    assert lines[44].endswith(b" \\Recent))\r\n")
    same(c, b"b", b"UID FETCH 1:*", b"FLAGS")
    same(c, b"c", b"UID FETCH 3,9:20,44", b"UID FLAGS")
    same(c, b"d", b"FETCH 2:4,30", b"UID")
    same(c, b"e", b"FETCH 7", b"FLAGS UID")
    # EXAMINE sees the \Recent of no session's claim.
    d.ok(b"x", b"EXAMINE INBOX")
    same(d, b"f", b"FETCH 1:*", b"FLAGS")
    # IMAP4rev2 has no \Recent.
    e = Raw(imapd)
    e.ok(b"en", b"ENABLE IMAP4rev2")
    e.ok(b"s", b"SELECT INBOX")
    assert b"\\Recent" not in b"".join(same(e, b"g", b"FETCH 1:*",
                                            b"FLAGS"))
    for x in (c, d, e):
        x.close()


def test_withheld_expunges_and_nothing_left(imapd):
    c = Raw(imapd)
    append(c, 1, 30, some_flags)
    c.ok(b"s", b"SELECT INBOX")
    d = Raw(imapd)
    d.ok(b"s", b"SELECT INBOX")
    d.ok(b"t", b"UID STORE 3,10,11,20,29 +FLAGS.SILENT (\\Deleted)")
    d.ok(b"x", b"EXPUNGE")
    # No EXPUNGE during FETCH: the numbers still count the gone messages.
    lines = same(c, b"a", b"FETCH 1:*", b"FLAGS", noop=False)
    assert not any(b"EXPUNGE" in l for l in lines)
    seqs = [int(FLAGS_LINE_RE.match(l).group(1)) for l in lines]
    assert seqs == [n for n in range(1, 31) if n not in (3, 10, 11, 20, 29)]
    same(c, b"b", b"UID FETCH 1:*", b"FLAGS", noop=False)
    same(c, b"c", b"FETCH 11:12", b"UID", noop=False)
    # Only expunged messages: no FETCH line at all.
    assert same(c, b"d", b"FETCH 3", b"FLAGS", noop=False) == []
    lines = c.ok(b"n", b"NOOP")
    assert sum(l.endswith(b" EXPUNGE\r\n") for l in lines) == 5
    same(c, b"e", b"FETCH 1:*", b"FLAGS")
    c.close()
    d.close()


def test_condstore_modseq_changedsince(imapd):
    c = Raw(imapd)
    append(c, 1, 20, some_flags)
    c.ok(b"e", b"ENABLE CONDSTORE")
    lines = c.ok(b"s", b"SELECT INBOX")
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(lines)).group(1))
    c.ok(b"t", b"STORE 4,9 +FLAGS.SILENT (\\Draft)")
    lines = same(c, b"a", b"FETCH 1:*", b"FLAGS MODSEQ")
    assert all(b" MODSEQ (" in l for l in lines)
    same(c, b"b", b"UID FETCH 1:*", b"MODSEQ")
    lines = same(c, b"c", b"FETCH 1:*", b"FLAGS", b" (CHANGEDSINCE %d)" % hms)
    assert [int(l.split()[1]) for l in lines] == [4, 9]
    same(c, b"d", b"UID FETCH 1:*", b"UID FLAGS",
         b" (CHANGEDSINCE %d)" % hms)
    c.close()


def test_qresync_vanished(imapd):
    c = Raw(imapd)
    append(c, 1, 20)
    c.ok(b"e", b"ENABLE QRESYNC")
    lines = c.ok(b"s", b"SELECT INBOX")
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(lines)).group(1))
    c.ok(b"t", b"UID STORE 2,5,6 +FLAGS.SILENT (\\Deleted)")
    c.ok(b"x", b"EXPUNGE")
    c.ok(b"t2", b"UID STORE 8 +FLAGS.SILENT (\\Flagged)")
    lines = same(c, b"a", b"UID FETCH 1:*", b"FLAGS",
                 b" (CHANGEDSINCE %d VANISHED)" % hms)
    assert lines[0] == b"* VANISHED (EARLIER) 2,5:6\r\n"
    assert len(lines) == 2 and b"UID 8 " in lines[1]
    c.close()


def check_flags_lines(lines, expunged=()):
    """Every line a well-formed FETCH, numbers and UIDs ascending."""
    last_seq = last_uid = 0
    for l in lines:
        m = FLAGS_LINE_RE.match(l)
        assert m, l
        seq, uid = int(m.group(1)), int(m.group(2))
        assert seq > last_seq and uid > last_uid, l
        last_seq, last_uid = seq, uid
    return last_seq


def read_fetch(c, tag, expect_tagged=b" OK"):
    lines, tagged = c.until(tag)
    assert tagged.startswith(tag + expect_tagged), tagged
    return lines


def test_large_fetch_while_others_change(imapd):
    c = Raw(imapd, rcvbuf=4096)
    append(c, 1, 5000, some_flags)
    c.ok(b"s", b"SELECT INBOX")
    d = Raw(imapd)
    d.ok(b"s", b"SELECT INBOX")
    c.send(b"f", b"UID FETCH 1:* (FLAGS)")
    time.sleep(0.2)
    # While c's answer is under way: flag changes and expunges.
    d.ok(b"t", b"STORE 1:* +FLAGS.SILENT (\\Flagged)")
    d.ok(b"u", b"UID STORE 100:4900 +FLAGS.SILENT (\\Deleted)")
    d.ok(b"x", b"EXPUNGE")
    d.ok(b"a", b"APPEND INBOX {%d+}\r\n" % len(msg(0)) + msg(0))
    lines = read_fetch(c, b"f")
    check_flags_lines(lines)
    assert len(lines) >= 199
    # The client then hears the expunges, the new message and the flags.
    lines = c.ok(b"n", b"NOOP")
    assert sum(l.endswith(b" EXPUNGE\r\n") for l in lines) == 4801
    assert b"* 200 EXISTS\r\n" in lines
    lines = same(c, b"g", b"FETCH 1:*", b"FLAGS")
    assert len(lines) == 200
    assert check_flags_lines(lines) == 200
    assert all(b"\\Flagged" in l for l in lines[:-1])
    c.close()
    d.close()


def test_client_that_does_not_read(imapd):
    c = Raw(imapd)
    # Long keywords make the answer several MiB, beyond socket buffers.
    kws = [b"keyword-%02d-%s" % (k, b"x" * 60) for k in range(12)]
    append(c, 1, 5000)
    c.ok(b"s", b"SELECT INBOX")
    c.ok(b"t", b"STORE 1:* +FLAGS.SILENT (%s)" % b" ".join(kws))
    c.close()
    slow = Raw(imapd, rcvbuf=4096)
    slow.ok(b"s", b"SELECT INBOX")
    slow.send(b"f", b"FETCH 1:* (FLAGS)")
    time.sleep(0.5)
    # The stalled session blocks nobody.
    other = Raw(imapd)
    other.ok(b"s", b"EXAMINE INBOX")
    t0 = time.monotonic()
    lines = other.ok(b"f", b"FETCH 4990:* (FLAGS)")
    assert len(lines) == 11 and time.monotonic() - t0 < 5
    other.ok(b"n", b"NOOP")
    # Once read, the answer is whole.
    lines = read_fetch(slow, b"f")
    assert len(lines) == 5000
    assert all(sorted(FLAGS_LINE_RE.match(l).group(3).split()) == kws
               for l in lines)
    assert [int(l.split()[1]) for l in lines] == list(range(1, 5001))
    slow.ok(b"n", b"NOOP")
    other.close()
    slow.close()


def test_disconnect_in_the_middle(imapd):
    c = Raw(imapd)
    append(c, 1, 5000)
    c.close()
    c = Raw(imapd, rcvbuf=4096)
    c.ok(b"s", b"SELECT INBOX")
    c.send(b"f", b"FETCH 1:* (UID FLAGS)")
    c.line()
    c.close()
    time.sleep(1.5)
    d = Raw(imapd)
    d.ok(b"s", b"SELECT INBOX")
    assert len(same(d, b"f", b"FETCH 1:*", b"FLAGS")) == 5000
    d.close()
