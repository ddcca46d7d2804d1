"""IMAP STORE, UID STORE, EXPUNGE, UID EXPUNGE and CLOSE against the real
daemon: flag modes, .SILENT, keywords, read-only refusal, persistence over
a reconnect and a restart, Maildir names, expunge numbering, and other
sessions hearing flag changes and expunges (in IDLE at once, otherwise at
their next command, never during FETCH or STORE)."""
import glob
import imaplib
import os
import re
import select
import smtplib

import pytest

from conftest import Daemon

USER = "alice@example.org"
PW = "secret"


class Imap:
    """A scripted IMAP client on a plain socket, logged in."""

    def __init__(self, port):
        import socket
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.buf = b""
        assert self.line().startswith("* OK ")
        self.cmd("l", f"LOGIN {USER} {PW}")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def cmd(self, tag, text):
        """Sends one command; returns its untagged lines and tagged line."""
        self.send(f"{tag} {text}")
        lines = []
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                return lines, line
            lines.append(line)

    def ok(self, tag, text):
        lines, tagged = self.cmd(tag, text)
        assert tagged.startswith(f"{tag} OK"), (lines, tagged)
        return lines

    def pending(self, wait=0.3):
        if self.buf:
            return True
        return bool(select.select([self.sock], [], [], wait)[0])

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


def send(d, n=1):
    s = smtplib.SMTP("127.0.0.1", d.ports["smtp"], timeout=10)
    for i in range(n):
        s.sendmail("a@remote.example", [USER],
                   (f"From: a@remote.example\r\nTo: {USER}\r\n"
                    f"Subject: m{i}\r\n\r\nbody {i}\r\n").encode())
    s.quit()


def news(lines):
    """The lines without RECENT, which follows expunges of \\Recent mail."""
    return [l for l in lines if not re.match(r"^\* \d+ RECENT$", l)]


FETCH_RE = re.compile(r"^\* (\d+) FETCH \((.*)\)$")


def flags(lines):
    """{seq: (set of flags without \\Recent, uid or None)} of FETCH lines."""
    out = {}
    for line in lines:
        m = FETCH_RE.match(line)
        assert m, line
        f = re.search(r"FLAGS \(([^)]*)\)", m.group(2))
        u = re.search(r"UID (\d+)", m.group(2))
        fl = set(f.group(1).split()) if f else set()
        out[int(m.group(1))] = (fl - {"\\Recent"},
                                int(u.group(1)) if u else None)
    return out


def test_store_modes_and_silent(imapd):
    send(imapd, 3)
    c = Imap(imapd.ports["imap"])
    c.ok("s", "SELECT INBOX")
    got = flags(c.ok("a", "STORE 1:2 +FLAGS (\\Seen \\Flagged)"))
    assert got == {1: ({"\\Seen", "\\Flagged"}, None),
                   2: ({"\\Seen", "\\Flagged"}, None)}
    got = flags(c.ok("b", "STORE 2 -FLAGS \\Flagged"))
    assert got == {2: ({"\\Seen"}, None)}
    got = flags(c.ok("c", "store 1 flags (\\Answered \\Draft)"))
    assert got == {1: ({"\\Answered", "\\Draft"}, None)}
    assert c.ok("d", "STORE 3 +FLAGS.SILENT (\\Deleted)") == []
    assert c.ok("e", "STORE 1:3 -FLAGS.SILENT ()") == []
    got = flags(c.ok("f", "FETCH 1:3 FLAGS"))
    assert got[3][0] == {"\\Deleted"} and got[2][0] == {"\\Seen"}
    # Nothing new to hear after our own changes.
    assert c.ok("g", "NOOP") == []
    c.close()


def test_store_keywords_and_errors(imapd):
    send(imapd, 2)
    c = Imap(imapd.ports["imap"])
    c.ok("s", "SELECT INBOX")
    got = flags(c.ok("a", "STORE 1 +FLAGS ($Forwarded custom)"))
    assert got == {1: ({"$Forwarded", "custom"}, None)}
    got = flags(c.ok("b", "STORE 1:2 +FLAGS ($forwarded)"))
    assert got[1][0] == {"$Forwarded", "custom"}
    assert got[2][0] == {"$Forwarded"}
    got = flags(c.ok("c", "STORE 1 -FLAGS (CUSTOM)"))
    assert got[1][0] == {"$Forwarded"}
    lines = c.ok("r", "SELECT INBOX")
    assert any(l.startswith("* FLAGS (") and "$Forwarded" in l
               for l in lines)
    for bad in ("STORE 1 +FLAGS (\\Recent)", "STORE 1 +FLAGS (\\Bogus)",
                "STORE 1 FLAGZ (\\Seen)", "STORE 9 +FLAGS (\\Seen)",
                "STORE 1 +FLAGS (a%b)", "STORE 1 +FLAGS"):
        lines, tagged = c.cmd("x", bad)
        assert tagged.startswith("x BAD"), (bad, tagged)
    c.ok("e", "EXAMINE INBOX")
    for cmd in ("STORE 1 +FLAGS (\\Seen)", "UID STORE 1 +FLAGS (\\Seen)",
                "EXPUNGE", "UID EXPUNGE 1"):
        lines, tagged = c.cmd("y", cmd)
        assert tagged.startswith("y NO [READ-ONLY]"), (cmd, tagged)
    c.close()


def test_uid_store(imapd):
    send(imapd, 3)
    c = Imap(imapd.ports["imap"])
    c.ok("s", "SELECT INBOX")
    got = flags(c.ok("a", "UID STORE 2:* +FLAGS (\\Flagged)"))
    assert got == {2: ({"\\Flagged"}, 2), 3: ({"\\Flagged"}, 3)}
    # UIDs past the last one name nothing, without error.
    assert c.ok("b", "UID STORE 7 +FLAGS (\\Flagged)") == []
    c.close()


def test_flags_persist_and_maildir_names(imapd):
    send(imapd, 2)
    m = imaplib.IMAP4("127.0.0.1", imapd.ports["imap"])
    m.login(USER, PW)
    m.select("INBOX")
    typ, _ = m.store("1", "+FLAGS", "(\\Seen \\Flagged)")
    assert typ == "OK"
    m.logout()
    cur = glob.glob(os.path.join(imapd.user_dir(USER), "cur", "*"))
    assert len(cur) == 1 and cur[0].endswith(":2,FS"), cur
    assert len(imapd.messages(USER)) == 1
    imapd.check_clean_exit(imapd.stop())
    imapd.start()
    m = imaplib.IMAP4("127.0.0.1", imapd.ports["imap"])
    m.login(USER, PW)
    m.select("INBOX")
    typ, data = m.fetch("1:2", "(FLAGS)")
    assert b"\\Seen" in data[0] and b"\\Flagged" in data[0]
    assert b"\\Seen" not in data[1]
    typ, data = m.status("INBOX", "(UNSEEN)")
    assert b"UNSEEN 1" in data[0]
    m.logout()


def test_expunge_numbers(imapd):
    send(imapd, 5)
    c = Imap(imapd.ports["imap"])
    c.ok("s", "SELECT INBOX")
    c.ok("a", "STORE 2,3,5 +FLAGS.SILENT (\\Deleted)")
    assert news(c.ok("b", "EXPUNGE")) == ["* 2 EXPUNGE", "* 2 EXPUNGE",
                                    "* 3 EXPUNGE"]
    got = flags(c.ok("c", "FETCH 1:* (UID FLAGS)"))
    assert {k: v[1] for k, v in got.items()} == {1: 1, 2: 4}
    assert c.ok("d", "EXPUNGE") == []
    c.close()
    status = Imap(imapd.ports["imap"]).ok("t", "STATUS INBOX (MESSAGES)")
    assert "MESSAGES 2" in status[0]
    assert len(glob.glob(os.path.join(imapd.user_dir(USER), "*", "*"))) \
        >= 2


def test_expunge_many(imapd):
    """More expunges than the view's window holds, in store-sized chunks."""
    send(imapd, 150)
    c = Imap(imapd.ports["imap"])
    c.ok("s", "SELECT INBOX")
    c.ok("a", "STORE 1:* +FLAGS.SILENT (\\Deleted)")
    assert news(c.ok("b", "EXPUNGE")) == ["* 1 EXPUNGE"] * 150
    assert "MESSAGES 0" in c.ok("t", "STATUS INBOX (MESSAGES)")[0]
    c.close()


def test_uid_expunge_only_named(imapd):
    send(imapd, 4)
    c = Imap(imapd.ports["imap"])
    c.ok("s", "SELECT INBOX")
    c.ok("a", "STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    assert news(c.ok("b", "UID EXPUNGE 2,4")) == ["* 2 EXPUNGE"]
    got = flags(c.ok("c", "FETCH 1:* (UID)"))
    assert [v[1] for k, v in sorted(got.items())] == [1, 3, 4]
    c.close()


def test_close_expunges(imapd):
    send(imapd, 3)
    c = Imap(imapd.ports["imap"])
    c.ok("s", "SELECT INBOX")
    c.ok("a", "STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    assert c.ok("b", "CLOSE") == []
    assert "MESSAGES 1" in c.ok("t", "STATUS INBOX (MESSAGES)")[0]
    # EXAMINE then CLOSE expunges nothing.
    c.ok("s", "SELECT INBOX")
    c.ok("a", "STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.ok("e", "EXAMINE INBOX")
    c.ok("b", "CLOSE")
    assert "MESSAGES 1" in c.ok("t", "STATUS INBOX (MESSAGES)")[0]
    c.close()


def test_other_session_in_idle(imapd):
    send(imapd, 4)
    a = Imap(imapd.ports["imap"])
    b = Imap(imapd.ports["imap"])
    a.ok("s", "SELECT INBOX")
    b.ok("s", "SELECT INBOX")
    b.send("i IDLE")
    assert b.line() == "+ idling"
    a.ok("a", "STORE 2 +FLAGS.SILENT ($Label1 \\Seen)")
    assert flags([b.line()]) == {2: ({"\\Seen", "$Label1"}, None)}
    a.ok("b", "STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    got = flags([b.line(), b.line()])
    assert got == {1: ({"\\Deleted"}, None), 3: ({"\\Deleted"}, None)}
    a.ok("c", "EXPUNGE")
    assert [b.line(), b.line()] == ["* 1 EXPUNGE", "* 2 EXPUNGE"]
    b.send("DONE")
    assert b.line() == "i OK IDLE terminated"
    got = flags(b.ok("f", "FETCH 1:* (UID)"))
    assert [v[1] for k, v in sorted(got.items())] == [2, 4]
    a.close()
    b.close()


def test_other_session_at_noop_not_during_fetch(imapd):
    send(imapd, 3)
    a = Imap(imapd.ports["imap"])
    b = Imap(imapd.ports["imap"])
    a.ok("s", "SELECT INBOX")
    b.ok("s", "SELECT INBOX")
    a.ok("a", "STORE 3 +FLAGS.SILENT (\\Flagged)")
    a.ok("b", "STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.ok("c", "EXPUNGE")
    assert not b.pending(0.3)
    # RFC 3501 7.4.1: no EXPUNGE during FETCH or STORE, and the numbers
    # are still the ones b knows: message 3 is UID 3.
    got = flags(b.ok("f", "FETCH 3 (UID)"))
    assert got == {3: (set(), 3)}
    got = flags(b.ok("g", "STORE 2 +FLAGS (\\Answered)"))
    assert got == {2: ({"\\Answered"}, None)}
    assert b.ok("h", "FETCH 1 (UID)") == []
    lines = news(b.ok("n", "NOOP"))
    assert lines[0] == "* 1 EXPUNGE"
    got = flags(lines[1:])
    assert got[2][0] == {"\\Flagged"}
    got = flags(b.ok("u", "FETCH 1:* (UID FLAGS)"))
    assert got == {1: ({"\\Answered"}, 2), 2: ({"\\Flagged"}, 3)}
    a.close()
    b.close()
