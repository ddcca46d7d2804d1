"""CONDSTORE and QRESYNC (RFC 7162) against the real daemon: HIGHESTMODSEQ
on SELECT and STATUS, the enabling commands, FETCH CHANGEDSINCE, STORE
UNCHANGEDSINCE with a conflict from a second session, QRESYNC SELECT with
VANISHED (EARLIER) and changed flags, VANISHED in place of EXPUNGE (also in
IDLE), UID FETCH VANISHED, a session behind the view's 128-expunge window,
and BAD for bad grammar."""
import re
import select
import smtplib
import socket

import pytest

from conftest import Daemon

USER = "alice@example.org"
PW = "secret"


class Imap:
    """A scripted IMAP client on a plain socket, logged in."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 20)
        self.buf = b""
        assert self.line().startswith("* OK ")
        self.ok("l", f"LOGIN {USER} {PW}")

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

    def bad(self, tag, text):
        lines, tagged = self.cmd(tag, text)
        assert tagged.startswith(f"{tag} BAD"), (lines, tagged)
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
    s = smtplib.SMTP("127.0.0.1", d.ports["smtp"], timeout=20)
    for i in range(n):
        s.sendmail("a@remote.example", [USER],
                   (f"From: a@remote.example\r\nTo: {USER}\r\n"
                    f"Subject: m{i}\r\n\r\nbody {i}\r\n").encode())
    s.quit()


def code(lines, name):
    """The value of the first untagged OK [name value], or None."""
    for line in lines:
        m = re.match(r"^\* OK \[" + name + r" (\d+)\]", line)
        if m:
            return int(m.group(1))
    return None


def modseqs(lines):
    """{uid: modseq} of FETCH lines carrying both."""
    out = {}
    for line in lines:
        u = re.search(r"UID (\d+)", line)
        m = re.search(r"MODSEQ \((\d+)\)", line)
        if line.startswith("* ") and " FETCH " in line and u and m:
            out[int(u.group(1))] = int(m.group(1))
    return out


def fetch_uids(lines):
    return sorted(int(re.search(r"UID (\d+)", l).group(1))
                  for l in lines if " FETCH " in l)


def status_hms(c, tag):
    lines = c.ok(tag, "STATUS INBOX (HIGHESTMODSEQ)")
    st = [l for l in lines if l.startswith("* STATUS")]
    return int(re.search(r"HIGHESTMODSEQ (\d+)", st[0]).group(1))


def test_highestmodseq_on_select(imapd):
    send(imapd, 2)
    c = Imap(imapd.ports["imap"])
    assert code(c.ok("a", "SELECT INBOX"), "HIGHESTMODSEQ") is None
    c.ok("b", "UNSELECT")
    c.ok("c", "ENABLE CONDSTORE")
    assert code(c.ok("d", "SELECT INBOX"), "HIGHESTMODSEQ") >= 1
    c.close()
    c = Imap(imapd.ports["imap"])
    lines = c.ok("e", "EXAMINE INBOX (CONDSTORE)")
    assert code(lines, "HIGHESTMODSEQ") >= 1
    c.close()
    c = Imap(imapd.ports["imap"])
    c.ok("e", "SELECT INBOX (CONDSTORE)")
    # Now the FETCH answers of STORE carry UID and MODSEQ.
    lines = c.ok("f", "STORE 1 +FLAGS (\\Seen)")
    assert re.match(r"^\* 1 FETCH \(UID 1 FLAGS \(.*\) MODSEQ \(\d+\)\)$",
                    lines[0]), lines
    c.close()


def test_enabling_command_while_selected(imapd):
    send(imapd, 1)
    c = Imap(imapd.ports["imap"])
    c.ok("a", "SELECT INBOX")
    lines = c.ok("b", "FETCH 1 (MODSEQ)")
    assert code(lines, "HIGHESTMODSEQ") is not None
    assert any("MODSEQ (" in l for l in lines)
    # Only the first enabling command says so.
    assert code(c.ok("c", "FETCH 1 (MODSEQ)"), "HIGHESTMODSEQ") is None
    c.close()
    c = Imap(imapd.ports["imap"])
    c.ok("a", "SELECT INBOX")
    lines = c.ok("b", "SEARCH MODSEQ 1")
    assert code(lines, "HIGHESTMODSEQ") is not None
    # RFC 7162 section 3.1.5: the highest MODSEQ of the hits follows.
    top = max(modseqs(c.ok("m", "FETCH 1:* (UID MODSEQ)")).values())
    hits = [l for l in lines if l.startswith("* SEARCH")]
    assert hits[0].endswith(f" (MODSEQ {top})"), lines
    lines = c.ok("c", "SEARCH RETURN (MIN) MODSEQ 1")
    assert any(l.endswith(f" MIN 1 MODSEQ {top}") for l in lines), lines
    lines = c.ok("d", f"SEARCH MODSEQ {top + 1}")
    assert "* SEARCH" in lines
    c.close()


def test_status_highestmodseq_rises(imapd):
    send(imapd, 2)
    a = Imap(imapd.ports["imap"])
    b = Imap(imapd.ports["imap"])
    h1 = status_hms(a, "a")
    b.ok("s", "SELECT INBOX")
    b.ok("t", "STORE 1 +FLAGS (\\Flagged)")
    h2 = status_hms(a, "b")
    assert h2 > h1
    send(imapd, 1)
    h3 = status_hms(a, "c")
    assert h3 > h2
    lines = a.ok("d", 'LIST "" INBOX RETURN (STATUS (HIGHESTMODSEQ))')
    assert any(f"HIGHESTMODSEQ {h3}" in l for l in lines), lines
    a.close()
    b.close()


def test_fetch_changedsince(imapd):
    send(imapd, 3)
    c = Imap(imapd.ports["imap"])
    c.ok("s", "SELECT INBOX (CONDSTORE)")
    base = modseqs(c.ok("a", "FETCH 1:* (UID MODSEQ)"))
    top = max(base.values())
    c.ok("b", "STORE 2 +FLAGS.SILENT (\\Seen)")
    lines = c.ok("c", f"FETCH 1:* (FLAGS) (CHANGEDSINCE {top})")
    assert fetch_uids(lines) == [2]
    assert modseqs(lines)[2] > top
    lines = c.ok("d", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {top + 100})")
    assert fetch_uids(lines) == []
    c.close()


def test_store_unchangedsince_conflict(imapd):
    send(imapd, 3)
    a = Imap(imapd.ports["imap"])
    b = Imap(imapd.ports["imap"])
    a.ok("s", "SELECT INBOX")
    b.ok("s", "SELECT INBOX")
    ms = modseqs(a.ok("a", "FETCH 1:3 (UID MODSEQ)"))
    top = max(ms.values())
    b.ok("b", "STORE 2 +FLAGS (\\Flagged)")
    lines, tagged = a.cmd("c",
                          f"STORE 1:3 (UNCHANGEDSINCE {top}) +FLAGS (\\Seen)")
    assert tagged.startswith("c OK [MODIFIED 2]"), (lines, tagged)
    done = {u for u, _ in modseqs(lines).items()}
    assert {1, 3} <= done and all("\\Seen" in l for l in lines
                                  if "UID 1 " in l or "UID 3 " in l)
    # Message 2 was not changed: no \Seen on it.
    lines = a.ok("d", "FETCH 2 (FLAGS)")
    assert "\\Seen" not in [l for l in lines if "FETCH" in l][0]
    # UID STORE names UIDs; .SILENT still reports the new MODSEQ.
    now = modseqs(a.ok("e", "UID FETCH 1:3 (MODSEQ)"))
    lines, tagged = a.cmd(
        "f", f"UID STORE 1:3 (UNCHANGEDSINCE {now[1]}) +FLAGS.SILENT "
        "(\\Answered)")
    assert tagged.startswith("f OK [MODIFIED "), tagged
    assert "FLAGS" not in " ".join(lines)
    # UNCHANGEDSINCE 0 fails every message.
    lines, tagged = a.cmd("g", "UID STORE 1:3 (UNCHANGEDSINCE 0) "
                          "+FLAGS (\\Draft)")
    assert tagged.startswith("g OK [MODIFIED 1:3]"), tagged
    assert lines == []
    a.close()
    b.close()


def select_qresync(port, params):
    c = Imap(port)
    c.ok("e", "ENABLE QRESYNC")
    return c, c.ok("s", f"SELECT INBOX {params}".rstrip())


def test_qresync_select(imapd):
    send(imapd, 5)
    port = imapd.ports["imap"]
    c, lines = select_qresync(port, "")
    uv = code(lines, "UIDVALIDITY")
    hms = code(lines, "HIGHESTMODSEQ")
    c.close()
    b = Imap(port)
    b.ok("s", "SELECT INBOX")
    b.ok("a", "STORE 2 +FLAGS (\\Flagged)")
    b.ok("b", "STORE 3:4 +FLAGS (\\Deleted)")
    b.ok("c", "EXPUNGE")
    b.close()
    c, lines = select_qresync(port, f"(QRESYNC ({uv} {hms}))")
    assert "* VANISHED (EARLIER) 3:4" in lines, lines
    fetches = [l for l in lines if " FETCH " in l]
    assert len(fetches) == 1 and "UID 2 " in fetches[0], lines
    assert "\\Flagged" in fetches[0] and "MODSEQ (" in fetches[0]
    assert code(lines, "HIGHESTMODSEQ") > hms
    c.close()
    # known-uids limits both.
    c, lines = select_qresync(port, f"(QRESYNC ({uv} {hms} 1,3))")
    assert "* VANISHED (EARLIER) 3" in lines, lines
    assert not [l for l in lines if " FETCH " in l]
    c.close()
    # With seq-match-data too.
    c, lines = select_qresync(port,
                              f"(QRESYNC ({uv} {hms} 1:5 (1:2 1:2)))")
    assert "* VANISHED (EARLIER) 3:4" in lines, lines
    c.close()
    # Another UIDVALIDITY: a plain SELECT.
    c, lines = select_qresync(port, f"(QRESYNC ({uv + 1} {hms}))")
    assert not [l for l in lines if "VANISHED" in l or " FETCH " in l]
    c.close()


def test_vanished_instead_of_expunge(imapd):
    send(imapd, 4)
    port = imapd.ports["imap"]
    a, _ = select_qresync(port, "")
    b = Imap(port)
    b.ok("s", "SELECT INBOX")
    b.ok("a", "STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("b", "EXPUNGE")
    lines = a.ok("n", "NOOP")
    assert "* VANISHED 2" in lines and not [l for l in lines
                                            if "EXPUNGE" in l], lines
    # In IDLE, at once.
    a.send("i IDLE")
    assert a.line().startswith("+ ")
    b.ok("c", "STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    b.ok("d", "EXPUNGE")
    gone = set()
    while gone != {1, 4} and a.pending(2):
        line = a.line()
        if line.startswith("* VANISHED "):
            gone |= {int(u) for u in re.split(r"[,:]", line[11:])}
        assert "EXPUNGE" not in line
    assert gone == {1, 4}
    a.send("DONE")
    while True:
        line = a.line()
        assert "EXPUNGE" not in line
        if line.startswith("i "):
            break
    assert line.startswith("i OK")
    # Our own EXPUNGE answers with VANISHED too.
    a.ok("j", "STORE 1 +FLAGS.SILENT (\\Deleted)")
    lines = a.ok("k", "EXPUNGE")
    assert [l for l in lines if "RECENT" not in l] == ["* VANISHED 3"]
    a.close()
    b.close()


def test_uid_fetch_vanished(imapd):
    send(imapd, 4)
    port = imapd.ports["imap"]
    a, lines = select_qresync(port, "")
    hms = code(lines, "HIGHESTMODSEQ")
    b = Imap(port)
    b.ok("s", "SELECT INBOX")
    b.ok("a", "STORE 2:3 +FLAGS.SILENT (\\Deleted)")
    b.ok("b", "EXPUNGE")
    b.ok("c", "STORE 1 +FLAGS.SILENT (\\Seen)")
    lines = a.ok("f", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    # The live expunges may come first (RFC 7162 section 3.2.10).
    assert "* VANISHED (EARLIER) 2:3" in lines, lines
    assert set(fetch_uids(lines)) == {1}
    lines = a.ok("g", f"UID FETCH 3:4 (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    assert "* VANISHED (EARLIER) 3" in lines, lines
    a.bad("h", f"FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    a.close()
    c = Imap(port)
    c.ok("s", "SELECT INBOX (CONDSTORE)")
    c.bad("a", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    c.close()
    b.close()


@pytest.mark.parametrize("qresync", [False, True])
def test_behind_the_window(imapd, qresync):
    send(imapd, 200)
    port = imapd.ports["imap"]
    if qresync:
        a, lines = select_qresync(port, "")
    else:
        a = Imap(port)
        lines = a.ok("s", "SELECT INBOX")
    assert "* 200 EXISTS" in lines
    b = Imap(port)
    b.ok("s", "SELECT INBOX")
    b.ok("a", "STORE 1:150 +FLAGS.SILENT (\\Deleted)")
    b.ok("b", "EXPUNGE")
    lines = a.ok("n", "NOOP")
    if qresync:
        assert "* VANISHED 1:150" in lines, lines
    else:
        exp = [l for l in lines if l.endswith(" EXPUNGE")]
        assert len(exp) == 150 and set(exp) == {"* 1 EXPUNGE"}, lines
    lines = a.ok("f", "FETCH 1:* (UID)")
    assert fetch_uids(lines) == list(range(151, 201))
    a.close()
    b.close()


def test_bad_grammar(imapd):
    send(imapd, 1)
    c = Imap(imapd.ports["imap"])
    c.bad("a", "SELECT INBOX (QRESYNC (1 1))")  # not enabled
    c.ok("e", "ENABLE QRESYNC")
    for i, p in enumerate(["(QRESYNC)", "(QRESYNC (1))", "(QRESYNC (0 1))",
                           "(QRESYNC (1 0))", "(QRESYNC (1 x))",
                           "(QRESYNC (1 1 1:*))", "(QRESYNC (1 1 1 (1)))",
                           "(QRESYNC (1 1 1 (1:2 3)))", "(FOO)", "()",
                           "(QRESYNC (1 1) QRESYNC (1 1))",
                           "(QRESYNC (1 99999999999999999999))"]):
        c.bad(f"b{i}", f"SELECT INBOX {p}")
        c.ok(f"n{i}", "NOOP")  # only consecutive errors end a session
    c.ok("s", "SELECT INBOX")
    c.bad("c", "STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)")
    c.bad("d", "STORE 1 (FOO 1) +FLAGS (\\Seen)")
    c.ok("n", "NOOP")
    c.bad("f", "STORE 1 (UNCHANGEDSINCE 1)")
    c.bad("g", "FETCH 1 (FLAGS) (CHANGEDSINCE x)")
    c.ok("h", "NOOP")
    c.close()
