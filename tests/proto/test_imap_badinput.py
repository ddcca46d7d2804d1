"""Bad and hostile IMAP input against the real daemon, on raw sockets:
over-long lines and literals, mailbox names that try to leave the user's
directory, deeply nested SEARCH programs, APPEND over APPENDLIMIT, a burst
of pipelined commands, a client that never reads, repeated bad LOGINs and
sequence numbers that name nothing (RFC 9051, RFC 3501 section 9, RFC
7888). Each test checks the exact response and that the session, or a new
one, still works afterwards."""
import os
import re
import select
import smtplib
import socket
import time

import pytest

from conftest import Daemon

USER = "alice@example.org"
PW = "secret"


class Raw:
    """A scripted IMAP client on a plain socket."""

    def __init__(self, port, login=True, source="127.0.0.1"):
        self.sock = socket.create_connection(("127.0.0.1", port), 10,
                                             source_address=(source, 0))
        self.buf = b""
        assert self.line().startswith("* OK ")
        if login:
            self.ok("l", f"LOGIN {USER} {PW}")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def until(self, tag):
        """Lines up to and including the tagged one."""
        lines = []
        while True:
            lines.append(self.line())
            if lines[-1].startswith(tag + " "):
                return lines

    def cmd(self, tag, text):
        self.send(f"{tag} {text}\r\n")
        lines = self.until(tag)
        return lines[:-1], lines[-1]

    def ok(self, tag, text):
        lines, tagged = self.cmd(tag, text)
        assert tagged.startswith(f"{tag} OK"), (lines, tagged)
        return lines

    def pending(self, wait=0.3):
        if self.buf:
            return True
        return bool(select.select([self.sock], [], [], wait)[0])

    def closed(self, timeout=5):
        """True when the server closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


@pytest.fixture
def imapd(tmp_path):
    d = Daemon(tmp_path)
    d.add_user(USER, PW)
    d.start()
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


def deliver(d, n=1, body="body"):
    s = smtplib.SMTP("127.0.0.1", d.ports["smtp"], timeout=10)
    for i in range(n):
        s.sendmail("a@remote.example", [USER],
                   (f"From: a@remote.example\r\nTo: {USER}\r\n"
                    f"Subject: m{i}\r\n\r\n{body}\r\n").encode())
    s.quit()


def rss_kib(d):
    with open(f"/proc/{d.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def still_works(d):
    r = Raw(d.ports["imap"])
    assert r.cmd("z", "NOOP") == ([], "z OK NOOP completed")
    r.close()


# ------------------------------------------------------------ long lines


def test_line_over_64k_is_bad_and_session_goes_on(imapd):
    r = Raw(imapd.ports["imap"])
    # 64 KiB with its CRLF is still a line.
    line = b"a NOOP "
    line += b"y" * (65536 - len(line) - 2)
    r.send(line + b"\r\n")
    assert r.line() == "a OK NOOP completed"
    # One byte more is BAD; the rest of the line is dropped.
    r.send(b"b NOOP " + b"x" * 65536 + b"\r\n")
    assert r.line() == "b BAD Command line too long"
    assert r.cmd("c", "NOOP") == ([], "c OK NOOP completed")
    # A megabyte without any line end is no different.
    r.send(b"d SELECT " + b"x" * (1 << 20) + b"\r\n")
    assert r.line() == "d BAD Command line too long"
    assert r.cmd("e", "NOOP") == ([], "e OK NOOP completed")
    r.close()


# -------------------------------------------------------------- literals


def test_sync_literal_over_limit_refused_before_continuation(imapd):
    r = Raw(imapd.ports["imap"])
    # APPENDLIMIT is advertised; one byte over it is NO [TOOBIG], with
    # no "+" first, and the command line is over.
    caps = r.ok("c", "CAPABILITY")[0]
    limit = int(re.search(r" APPENDLIMIT=(\d+)", caps).group(1))
    r.send(b"a APPEND INBOX {%d}\r\n" % (limit + 1))
    assert r.line() == "a NO [TOOBIG] Literal too big"
    assert not r.pending()
    assert r.cmd("b", "NOOP") == ([], "b OK NOOP completed")
    r.close()


def test_sync_literal_over_limit_outside_append_is_bad(imapd):
    r = Raw(imapd.ports["imap"])
    r.send(b"a SELECT {70000000}\r\n")
    assert r.line().startswith("a BAD [TOOBIG]")
    r.close()


def test_nonsync_literal_over_limit_closes_without_growth(imapd):
    r = Raw(imapd.ports["imap"])
    before = rss_kib(imapd)
    r.send(b"a APPEND INBOX {70000000+}\r\n")
    chunk = b"x" * 65536
    sent = 0
    try:
        while sent < 50_000_000:
            r.sock.sendall(chunk)
            sent += len(chunk)
    except (ConnectionResetError, BrokenPipeError):
        pass
    grown = rss_kib(imapd) - before
    assert grown < 16 * 1024, grown
    # RFC 7888 section 4: the server may close instead of reading it all.
    assert r.line() == "a BAD [TOOBIG] Literal too big"
    assert r.line() == "* BYE Cannot continue after this command"
    assert r.closed()
    r.close()
    still_works(imapd)


def test_unterminated_literal_then_disconnect(imapd):
    deliver(imapd)
    r = Raw(imapd.ports["imap"])
    r.send(b"a APPEND INBOX {1000+}\r\nFrom: x\r\n\r\npartial")
    r.close()
    r = Raw(imapd.ports["imap"])
    r.send(b"a APPEND INBOX {1000}\r\n")
    assert r.line() == "+ OK"
    r.send(b"From: y\r\n")
    r.close()
    # Nothing half-written was stored; the daemon goes on.
    r = Raw(imapd.ports["imap"])
    lines = r.ok("s", "SELECT INBOX")
    assert "* 1 EXISTS" in lines
    r.close()
    assert imapd.proc.poll() is None


def test_literal_inside_search(imapd):
    deliver(imapd, body="needle")
    r = Raw(imapd.ports["imap"])
    r.ok("s", "SELECT INBOX")
    r.send(b"a SEARCH BODY {6}\r\n")
    assert r.line() == "+ OK"
    r.send(b"needle\r\n")
    assert r.until("a") == ["* SEARCH 1", "a OK SEARCH completed"]
    # Bytes after the literal that do not continue the command: BAD.
    r.send(b"b SEARCH BODY {6+}\r\nneedlexyz\r\n")
    assert r.line().startswith("b BAD ")
    assert r.cmd("c", "NOOP") == ([], "c OK NOOP completed")
    r.close()


# --------------------------------------------------------- mailbox names

BAD_NAMES = ["a/../b", "..", "/a", "a//b", "&Jjo", "&AGE-", "a/./b",
             "../x", "INBOX/../../etc"]


def disk_dirs(d):
    """Every directory under the data dir, relative to it."""
    out = set()
    for root, dirs, _ in os.walk(d.data):
        for name in dirs:
            out.add(os.path.relpath(os.path.join(root, name), d.data))
    return out


def test_bad_mailbox_names(imapd):
    r = Raw(imapd.ports["imap"])
    r.ok("c", "CREATE x")
    before = disk_dirs(imapd)
    outside = set(os.listdir(os.path.dirname(imapd.data)))
    for i, name in enumerate(BAD_NAMES):
        q = '"%s"' % name
        got = r.cmd(f"c{i}", f"CREATE {q}")
        assert got == ([], f"c{i} NO [CANNOT] Invalid mailbox name"), name
        got = r.cmd(f"r{i}", f"RENAME x {q}")
        assert got == ([], f"r{i} NO [CANNOT] Invalid mailbox name"), name
        _, tagged = r.cmd(f"s{i}", f"SELECT {q}")
        assert re.match(rf"s{i} NO \[(NONEXISTENT|CANNOT)\] ", tagged), name
        _, tagged = r.cmd(f"d{i}", f"DELETE {q}")
        assert re.match(rf"d{i} NO \[(NONEXISTENT|CANNOT)\] ", tagged), name
    # RENAME target with a trailing separator names no mailbox.
    assert r.cmd("t", 'RENAME x "y/"') == (
        [], "t NO [CANNOT] Invalid mailbox name")
    assert disk_dirs(imapd) == before
    assert set(os.listdir(os.path.dirname(imapd.data))) == outside
    names = [l for l in r.ok("l", 'LIST "" *')]
    assert len(names) == 7 and '* LIST (\\HasNoChildren) "/" "x"' in names
    # A trailing separator on CREATE only declares intent (RFC 9051
    # section 6.3.4): the mailbox is created without it.
    r.ok("c", 'CREATE "p/"')
    assert '* LIST (\\HasNoChildren) "/" "p"' in r.ok("l", 'LIST "" p')
    r.close()
    still_works(imapd)


def test_copy_append_to_invalid_name_no_trycreate(imapd):
    deliver(imapd)
    r = Raw(imapd.ports["imap"])
    r.ok("s", "SELECT INBOX")
    for i, name in enumerate(["../x", "a/../b", "&Jjo"]):
        _, tagged = r.cmd(f"c{i}", f'COPY 1 "{name}"')
        assert tagged.startswith(f"c{i} NO [CANNOT]"), tagged
        r.send(b'a%d APPEND "%s" {5+}\r\nhello\r\n' % (i, name.encode()))
        tagged = r.line()
        assert tagged.startswith(f"a{i} NO [CANNOT]"), tagged
    r.close()


# -------------------------------------------------------- SEARCH nesting


def test_search_deep_nesting(imapd):
    deliver(imapd, 2)
    r = Raw(imapd.ports["imap"])
    r.ok("s", "SELECT INBOX")
    cases = [
        "NOT " * 10000 + "ALL",
        "(" * 10000 + "ALL" + ")" * 10000,
        "OR ALL " * 10000 + "ALL",
        "NOT " * 5000 + "ALL",
        "NOT (" * 3000 + "ALL" + ")" * 3000,
        "(" * 40 + "ALL" + ")" * 40,
    ]
    for i, prog in enumerate(cases):
        lines, tagged = r.cmd(f"n{i}", f"SEARCH {prog}")
        assert lines == [] and tagged.startswith(f"n{i} BAD "), (i, tagged)
    # A modest depth still works.
    lines = r.ok("o", "SEARCH " + "NOT " * 20 + "ALL")
    assert lines == ["* SEARCH 1 2"]
    lines = r.ok("p", "SEARCH " + "(" * 20 + "ALL" + ")" * 20)
    assert lines == ["* SEARCH 1 2"]
    r.close()
    still_works(imapd)


# --------------------------------------------------------- APPENDLIMIT


def test_append_over_appendlimit(imapd):
    r = Raw(imapd.ports["imap"])
    caps = r.ok("c", "CAPABILITY")[0]
    limit = int(re.search(r" APPENDLIMIT=(\d+)", caps).group(1))
    assert limit > 0
    # Non-synchronising: refused, and the connection cannot go on.
    r.send(b"a APPEND INBOX (\\Seen) {%d+}\r\n" % (limit + 1))
    assert r.line() == "a BAD [TOOBIG] Literal too big"
    assert r.line().startswith("* BYE ")
    assert r.closed()
    r.close()
    r = Raw(imapd.ports["imap"])
    r.send(b"b APPEND INBOX {%d}\r\n" % (2 * limit))
    assert r.line() == "b NO [TOOBIG] Literal too big"
    # A small one still goes in.
    r.send(b"c APPEND INBOX {11}\r\n")
    assert r.line() == "+ OK"
    r.send(b"Subject: x\r\n\r\n")
    assert re.match(r"c OK \[APPENDUID \d+ 1\] ", r.line())
    r.close()


# ------------------------------------------------------------ pipelining


def test_hundred_pipelined_commands(imapd):
    deliver(imapd, 3)
    r = Raw(imapd.ports["imap"])
    r.ok("s", "SELECT INBOX")
    cmds = []
    for i in range(100):
        kind = i % 5
        if kind == 0:
            cmds.append(f"p{i} NOOP")
        elif kind == 1:
            cmds.append(f"p{i} FETCH 1:3 (UID FLAGS)")
        elif kind == 2:
            cmds.append(f"p{i} UID FETCH 2 BODY.PEEK[TEXT]")
        elif kind == 3:
            cmds.append(f"p{i} STORE 1 FLAGS.SILENT (\\Flagged)")
        else:
            cmds.append(f"p{i} SEARCH ALL")
    r.send("".join(c + "\r\n" for c in cmds))
    tagged = []
    while len(tagged) < 100:
        line = r.line()
        # Literal data (BODY[TEXT] is "body") spans lines of its own.
        if re.match(r"p\d+ ", line):
            tagged.append(line)
    assert [t.split()[0] for t in tagged] == [f"p{i}" for i in range(100)]
    assert all(t.split()[1] == "OK" for t in tagged), tagged
    assert not r.pending()
    r.close()


# ---------------------------------------------------- a client not reading


def test_client_that_never_reads(imapd):
    big = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 1000
    r = Raw(imapd.ports["imap"])
    r.send(b"a APPEND INBOX {%d}\r\n" % len(big))
    assert r.line() == "+ OK"
    r.send(big + b"\r\n")
    assert r.line().startswith("a OK")
    r.ok("s", "SELECT INBOX")
    watcher = Raw(imapd.ports["imap"])
    watcher.ok("s", "SELECT INBOX")
    watcher.send("i IDLE\r\n")
    assert watcher.line().startswith("+ ")
    before = rss_kib(imapd)
    # Gigabytes of answers asked for, none read: the server stops reading
    # too, so the commands back up until this side cannot send.
    r.sock.setblocking(False)
    blocked = False
    batch = b"".join(b"f%d FETCH 1 BODY.PEEK[]\r\n" % i for i in range(1000))
    deadline = time.monotonic() + 20
    while not blocked and time.monotonic() < deadline:
        try:
            r.sock.send(batch)
        except BlockingIOError:
            time.sleep(0.2)
            try:
                r.sock.send(batch)
            except BlockingIOError:
                blocked = True
    assert blocked
    start = time.monotonic()
    deliver(imapd)
    watcher.sock.settimeout(1)
    assert watcher.line() == "* 2 EXISTS"
    assert time.monotonic() - start < 1
    time.sleep(1)
    grown = rss_kib(imapd) - before
    print("rss grown KiB", grown)
    assert grown < 32 * 1024, grown
    watcher.send("DONE\r\n")
    assert watcher.until("i")[-1] == "i OK IDLE terminated"
    r.close()
    watcher.close()
    still_works(imapd)


# ------------------------------------------------------------ bad logins


def attempt(d, password, source="127.0.0.1"):
    r = Raw(d.ports["imap"], login=False, source=source)
    start = time.monotonic()
    _, tagged = r.cmd("l", f"LOGIN {USER} {password}")
    elapsed = time.monotonic() - start
    r.close()
    return tagged, elapsed


def test_bad_logins_throttled_per_address(imapd):
    results = [attempt(imapd, f"bad{i}") for i in range(5)]
    for tagged, _ in results:
        assert tagged == "l NO [AUTHENTICATIONFAILED] Authentication failed"
    times = [t for _, t in results]
    assert max(times[:3]) < 0.9, times
    assert times[3] >= 0.9 and times[4] >= 1.8, times
    # Another address is not held back by this one's failures.
    tagged, elapsed = attempt(imapd, PW, source="127.0.0.2")
    assert tagged.startswith("l OK ") and elapsed < 0.9, (tagged, elapsed)


def test_bad_logins_in_one_session(imapd):
    r = Raw(imapd.ports["imap"], login=False)
    for i in range(3):
        _, tagged = r.cmd(f"l{i}", f"LOGIN {USER} wrong{i}")
        assert tagged == (f"l{i} NO [AUTHENTICATIONFAILED] "
                          "Authentication failed")
    # A right password still works in the same session afterwards.
    _, tagged = r.cmd("ok", f"LOGIN {USER} {PW}")
    assert tagged.startswith("ok OK ")
    r.close()


# ----------------------------------------------------- sequence numbers


def test_sequence_numbers_beyond_the_mailbox(imapd):
    deliver(imapd, 2)
    r = Raw(imapd.ports["imap"])
    r.ok("s", "SELECT INBOX")
    for i, cmd in enumerate(["FETCH 3 FLAGS", "FETCH 1:3 FLAGS",
                             "STORE 5 +FLAGS (\\Seen)", "COPY 9 INBOX",
                             "FETCH 4294967295 FLAGS"]):
        lines, tagged = r.cmd(f"b{i}", cmd)
        assert lines == [] and tagged.startswith(f"b{i} BAD "), (cmd, tagged)
    # A UID set naming nothing is no error: OK with no data.
    for i, cmd in enumerate(["UID FETCH 99 FLAGS", "UID FETCH 3:99 FLAGS",
                             "UID STORE 99 +FLAGS (\\Seen)",
                             "UID COPY 99 INBOX", "UID MOVE 99 INBOX",
                             "UID EXPUNGE 99"]):
        lines, tagged = r.cmd(f"u{i}", cmd)
        assert lines == [] and tagged.startswith(f"u{i} OK "), (cmd, tagged)
    assert r.ok("v", "UID SEARCH UID 99") == ["* SEARCH"]
    # "*" in an empty mailbox names no message: BAD; as a UID: OK.
    r.ok("c", "CREATE empty")
    r.ok("e", "SELECT empty")
    for i, cmd in enumerate(["FETCH * FLAGS", "FETCH 1 FLAGS",
                             "STORE * +FLAGS (\\Seen)", "COPY * INBOX"]):
        lines, tagged = r.cmd(f"x{i}", cmd)
        assert lines == [] and tagged.startswith(f"x{i} BAD "), (cmd, tagged)
    assert r.ok("y", "UID FETCH 1:* FLAGS") == []
    assert r.ok("z", "UID FETCH * FLAGS") == []
    r.close()


def test_examine_then_close_reports_no_bogus_recent(imapd):
    deliver(imapd, 3)
    first = Raw(imapd.ports["imap"])
    assert "* 3 RECENT" in first.ok("s", "SELECT INBOX")
    first.ok("o", "LOGOUT")
    first.close()
    r = Raw(imapd.ports["imap"])
    lines = r.ok("e", "EXAMINE INBOX")
    assert "* 3 EXISTS" in lines and "* 0 RECENT" in lines
    assert r.ok("n", "NOOP") == []
    assert r.ok("c", "CLOSE") == []
    r.close()
