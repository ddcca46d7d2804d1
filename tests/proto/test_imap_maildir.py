"""Other programs' changes to a user's Maildir reach IMAP clients: a file
an MDA moves into new/, a mail reader's rename into cur/ with ":2,S", a
deleted file, and changes made while the daemon was stopped. The store's
own STORE, EXPUNGE and APPEND are not taken for foreign changes."""
import os
import re
import select
import socket
import time

import pytest

from conftest import Daemon

USER = "alice@example.org"
PW = "secret"


class Imap:
    """A scripted IMAP client on a plain socket, logged in."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.buf = b""
        assert self.line().startswith("* OK ")
        self.ok("l", f"LOGIN {USER} {PW}")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def line(self, timeout=10):
        deadline = time.time() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                raise TimeoutError(self.buf)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def cmd(self, tag, text):
        self.send(f"{tag} {text}")
        lines = []
        while True:
            line = self.line()
            m = re.search(r"\{(\d+)\}$", line)
            if m:
                n = int(m.group(1))
                while len(self.buf) < n:
                    self.buf += self.sock.recv(65536)
                line += self.buf[:n].decode(errors="replace")
                self.buf = self.buf[n:]
                line += self.line()
            if line.startswith(tag + " "):
                return lines, line
            lines.append(line)

    def ok(self, tag, text):
        lines, tagged = self.cmd(tag, text)
        assert tagged.startswith(f"{tag} OK"), (lines, tagged)
        return lines

    def idle(self):
        self.send("i IDLE")
        assert self.line().startswith("+ ")

    def done(self):
        """Ends IDLE; returns the untagged lines that came before OK."""
        self.send("DONE")
        lines = []
        while True:
            line = self.line()
            if line.startswith("i "):
                assert line.startswith("i OK"), line
                return lines
            lines.append(line)

    def quiet(self, wait=0.5):
        """Lines that arrive within wait seconds (none expected)."""
        lines = []
        while self.buf or select.select([self.sock], [], [], wait)[0]:
            lines.append(self.line())
        return lines

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


def inbox(d, sub=""):
    return os.path.join(d.user_dir(USER), sub)


def message(subject, body="hello"):
    return (f"From: bob@example.org\r\nTo: {USER}\r\n"
            f"Subject: {subject}\r\n\r\n{body}\r\n").encode()


def mda_deliver(d, name, data, sub="new"):
    """What a delivery agent does: write in tmp/, rename into place."""
    tmp = os.path.join(inbox(d, "tmp"), name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(inbox(d, sub), name))


def files(d, sub):
    return sorted(os.listdir(inbox(d, sub)))


def untagged(lines):
    """The lines without RECENT counts."""
    return [l for l in lines if not re.match(r"^\* \d+ RECENT$", l)]


def fetch_flags(line, seq):
    """The flags (without \\Recent) of a FETCH line for seq."""
    m = re.match(rf"^\* {seq} FETCH \(.*FLAGS \(([^)]*)\)", line)
    assert m, line
    return set(m.group(1).split()) - {"\\Recent"}


def wait_line(c, timeout=1.0):
    """The next untagged line other than RECENT, within timeout."""
    deadline = time.time() + timeout
    while True:
        line = c.line(timeout=max(deadline - time.time(), 0.001))
        if not re.match(r"^\* \d+ RECENT$", line):
            return line


def test_mda_file_in_new_reaches_idle(imapd):
    c = Imap(imapd.ports["imap"])
    c.ok("s", "SELECT INBOX")
    c.idle()
    mda_deliver(imapd, "1700000000.P1Q1.mda", message("from procmail"))
    assert wait_line(c) == "* 1 EXISTS"
    assert untagged(c.done()) == []
    lines = c.ok("f", "FETCH 1 (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert "UID 1 " in lines[0] and "Subject: from procmail" in lines[0]
    # Renamed to the store's scheme, with the UID in the name.
    names = files(imapd, "new")
    assert len(names) == 1 and ",U=1,S=" in names[0]
    assert untagged(c.quiet()) == []
    c.close()


def test_rename_to_cur_seen_and_delete(imapd):
    mda_deliver(imapd, "1700000000.P1Q2.mda", message("one"))
    mda_deliver(imapd, "1700000000.P1Q3.mda", message("two"))
    c = Imap(imapd.ports["imap"])
    lines = c.ok("s", "SELECT INBOX")
    assert "* 2 EXISTS" in lines
    names = files(imapd, "new")
    assert len(names) == 2
    c.idle()
    # A mail reader marks the first read: new/X becomes cur/X:2,S.
    os.rename(os.path.join(inbox(imapd, "new"), names[0]),
              os.path.join(inbox(imapd, "cur"), names[0] + ":2,S"))
    assert fetch_flags(wait_line(c), 1) == {"\\Seen"}
    # Then flags it and answers it, letters in its own order plus P.
    os.rename(os.path.join(inbox(imapd, "cur"), names[0] + ":2,S"),
              os.path.join(inbox(imapd, "cur"), names[0] + ":2,FPRS"))
    got = fetch_flags(wait_line(c), 1)
    assert got == {"\\Seen", "\\Flagged", "\\Answered"}
    # And deletes the second.
    os.unlink(os.path.join(inbox(imapd, "new"), names[1]))
    assert wait_line(c) == "* 2 EXPUNGE"
    assert untagged(c.done()) == []
    lines = c.ok("f", "FETCH 1:* (UID FLAGS)")
    assert len(lines) == 1 and "UID 1 " in lines[0]
    # The file carries the store's name for its state.
    assert files(imapd, "cur") == [names[0] + ":2,FRS"]
    assert files(imapd, "new") == []
    assert untagged(c.quiet()) == []
    c.close()


def test_burst_is_one_batch(imapd):
    c = Imap(imapd.ports["imap"])
    c.ok("s", "SELECT INBOX")
    c.idle()
    for i in range(20):
        mda_deliver(imapd, f"1700000001.P1Q{i}.mda", message(f"m{i}"))
    seen = 0
    while seen < 20:
        m = re.match(r"^\* (\d+) EXISTS$", wait_line(c, 5))
        assert m
        seen = int(m.group(1))
    assert seen == 20
    assert untagged(c.done()) == []
    lines = c.ok("f", "UID FETCH 1:* (UID)")
    assert len(lines) == 20
    c.close()


def test_changes_while_stopped(imapd):
    for i in range(3):
        mda_deliver(imapd, f"1700000002.P1Q{i}.mda", message(f"m{i}"))
    c = Imap(imapd.ports["imap"])
    assert "* 3 EXISTS" in c.ok("s", "SELECT INBOX")
    c.ok("a", "STORE 3 +FLAGS (\\Flagged)")
    c.close()
    imapd.check_clean_exit(imapd.stop())
    new = files(imapd, "new")
    cur = files(imapd, "cur")
    assert len(new) == 2 and len(cur) == 1
    # UID 1 is read, UID 2 is deleted, a new one arrives, UID 3 unflagged.
    os.rename(os.path.join(inbox(imapd, "new"), new[0]),
              os.path.join(inbox(imapd, "cur"), new[0] + ":2,S"))
    os.unlink(os.path.join(inbox(imapd, "new"), new[1]))
    base = cur[0].split(":2,")[0]
    os.rename(os.path.join(inbox(imapd, "cur"), cur[0]),
              os.path.join(inbox(imapd, "cur"), base + ":2,"))
    mda_deliver(imapd, "1700000003.P1Q9.mda", message("while away"))
    imapd.start()
    c = Imap(imapd.ports["imap"])
    lines = c.ok("s", "SELECT INBOX")
    assert "* 3 EXISTS" in lines
    lines = c.ok("f", "FETCH 1:* (UID FLAGS)")
    got = {}
    for line in lines:
        uid = int(re.search(r"UID (\d+)", line).group(1))
        fl = set(re.search(r"FLAGS \(([^)]*)\)", line).group(1).split())
        got[uid] = fl - {"\\Recent"}
    assert got == {1: {"\\Seen"}, 3: set(), 4: set()}
    c.close()


def test_changes_in_unwatched_mailbox_seen_at_select(imapd):
    c = Imap(imapd.ports["imap"])
    c.ok("s", "SELECT INBOX")
    # Archive has no view: nothing watches it; its SELECT scans it.
    arch = os.path.join(imapd.user_dir(USER), ".Archive")
    with open(os.path.join(arch, "tmp", "x.mda"), "wb") as f:
        f.write(message("archived"))
    os.rename(os.path.join(arch, "tmp", "x.mda"),
              os.path.join(arch, "cur", "x.mda:2,S"))
    lines = c.ok("s2", "SELECT Archive")
    assert "* 1 EXISTS" in lines
    lines = c.ok("f", "FETCH 1 (FLAGS)")
    assert "\\Seen" in lines[0]
    c.close()


def test_own_changes_are_not_foreign(imapd):
    a = Imap(imapd.ports["imap"])
    b = Imap(imapd.ports["imap"])
    mda_deliver(imapd, "1700000004.P1Q1.mda", message("one"))
    mda_deliver(imapd, "1700000004.P1Q2.mda", message("two"))
    a.ok("s", "SELECT INBOX")
    b.ok("s", "SELECT INBOX")
    a.idle()
    b.ok("a", "STORE 1 +FLAGS.SILENT (\\Seen)")
    assert fetch_flags(wait_line(a), 1) == {"\\Seen"}
    b.ok("b", "STORE 2 +FLAGS.SILENT (\\Deleted)")
    assert fetch_flags(wait_line(a), 2) == {"\\Deleted"}
    assert untagged(b.ok("c", "EXPUNGE")) == ["* 2 EXPUNGE"]
    assert wait_line(a) == "* 2 EXPUNGE"
    msg = message("appended")
    b.send(f"d APPEND INBOX (\\Flagged) {{{len(msg)}}}")
    assert b.line().startswith("+")
    b.sock.sendall(msg + b"\r\n")
    lines = []
    while True:
        line = b.line()
        if line.startswith("d "):
            assert line.startswith("d OK"), line
            break
        lines.append(line)
    assert wait_line(a) == "* 2 EXISTS"
    # Nothing else: no second EXISTS, FETCH or EXPUNGE from the renames.
    assert untagged(a.quiet(1.0)) == []
    assert untagged(a.done()) == []
    # b hears of its APPEND once, during APPEND or at its next command.
    lines += b.ok("n", "NOOP")
    assert untagged(lines) == ["* 2 EXISTS"]
    assert untagged(b.ok("n2", "NOOP")) == []
    lines = a.ok("f", "FETCH 1:* (UID FLAGS)")
    assert len(lines) == 2
    # One reconciliation changed anything: the SELECT that found the two.
    assert len(re.findall(r"op=maildir_sync .*changes=2 full=1",
                          imapd.log())) == 1
    assert len(re.findall(r"op=maildir_sync", imapd.log())) == 1
    assert "UID 1 " in lines[0] and "\\Seen" in lines[0]
    assert "UID 3 " in lines[1] and "\\Flagged" in lines[1]
    a.close()
    b.close()
