"""IMAP RENAME against the real daemon: RENAME INBOX moves its messages
(UIDs, flags and keywords kept) into a new mailbox with a new UIDVALIDITY
and leaves INBOX empty, selectable and receiving, while an idling INBOX
session hears an EXPUNGE per message; INBOX's inferiors stay; the
subscriptions follow a renamed mailbox; CREATE does not subscribe; a name
that exists only through its inferiors can be renamed; and a RENAME cut
short between its commit and its file or folder renames is finished by
recovery at the next start."""
import imaplib
import os
import re
import select
import smtplib
import socket
import sqlite3

import pytest

from conftest import Daemon

USER = "alice@example.org"
PW = "secret"


def msg(i):
    return (f"From: a@remote.example\r\nTo: {USER}\r\n"
            f"Subject: m{i}\r\n\r\nbody {i}\r\n").encode()


@pytest.fixture
def imapd(tmp_path):
    d = Daemon(tmp_path)
    d.add_user(USER, PW)
    d.start()
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


def login(d):
    c = imaplib.IMAP4("127.0.0.1", d.ports["imap"])
    c.login(USER, PW)
    return c


def deliver(d, n, start=0):
    s = smtplib.SMTP("127.0.0.1", d.ports["smtp"], timeout=10)
    for i in range(start, start + n):
        s.sendmail("a@remote.example", [USER], msg(i))
    s.quit()


def seed(c, n):
    """Appends n messages to INBOX and gives them flags and keywords."""
    for i in range(n):
        assert c.append("INBOX", None, None, msg(i))[0] == "OK"
    c.select("INBOX")
    assert c.store("1", "+FLAGS", r"(\Flagged $Work)")[0] == "OK"
    assert c.store("2", "+FLAGS", r"(\Seen)")[0] == "OK"
    assert c.store("3", "+FLAGS", r"(\Answered Later)")[0] == "OK"
    c.close()


def status(c, name):
    typ, data = c.status(name, "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
    assert typ == "OK", data
    return {k.decode(): int(v) for k, v in
            re.findall(rb"(\w+) (\d+)", data[0].split(b"(", 1)[1])}


def uid_flags(c, name):
    """{uid: set of flags (without \\Recent)} of a mailbox's messages."""
    typ, data = c.select(name)
    assert typ == "OK", data
    out = {}
    if data[0] != b"0":
        typ, data = c.fetch("1:*", "(UID FLAGS)")
        for line in data:
            uid = int(re.search(rb"UID (\d+)", line).group(1))
            f = re.search(rb"FLAGS \(([^)]*)\)", line).group(1).decode()
            out[uid] = set(f.split()) - {"\\Recent"}
    c.close()
    return out


EXPECTED = {1: {"\\Flagged", "$Work"}, 2: {"\\Seen"},
            3: {"\\Answered", "Later"}, 4: set(), 5: set()}


def names(c, cmd="LIST"):
    typ, data = c._simple_command(cmd, '""', '"*"')
    assert typ == "OK"
    typ, data = c._untagged_response(typ, data, cmd)
    out = set()
    for line in data:
        if line is None:
            continue
        m = re.match(rb'\(.*?\) (?:"."|NIL) (.*)$', line)
        out.add(m.group(1).decode().strip('"'))
    return out


class Idler:
    """A second session with INBOX selected, idling on a plain socket."""

    def __init__(self, d):
        self.sock = socket.create_connection(("127.0.0.1", d.ports["imap"]),
                                             10)
        self.buf = b""
        self.line()
        self.cmd("l", f"LOGIN {USER} {PW}")
        self.cmd("s", "SELECT INBOX")
        self.sock.sendall(b"i IDLE\r\n")
        assert self.line() == "+ idling"

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
                assert line.startswith(tag + " OK"), (lines, line)
                return lines
            lines.append(line)

    def quiet(self, wait=0.3):
        return not self.buf and not select.select([self.sock], [], [],
                                                  wait)[0]


def files(d, folder):
    base = os.path.join(d.user_dir(USER), folder)
    return sorted(n for sub in ("new", "cur")
                  for n in os.listdir(os.path.join(base, sub)))


def test_rename_inbox(imapd):
    c = login(imapd)
    seed(c, 5)
    before = status(c, "INBOX")
    inbox_files = files(imapd, "")
    idler = Idler(imapd)
    typ, data = c.rename("INBOX", "Old/2025")
    assert typ == "OK", data
    # The idling session hears every message leave, at once.
    got = [idler.line() for _ in range(5)]
    assert got == ["* 1 EXPUNGE"] * 5
    assert idler.quiet()
    old = status(c, "Old/2025")
    assert old["MESSAGES"] == 5 and old["UNSEEN"] == 4
    assert old["UIDNEXT"] == before["UIDNEXT"] == 6
    assert old["UIDVALIDITY"] != before["UIDVALIDITY"]
    after = status(c, "INBOX")
    assert after["MESSAGES"] == 0 and after["UNSEEN"] == 0
    assert after["UIDNEXT"] == 6
    assert after["UIDVALIDITY"] == before["UIDVALIDITY"]
    assert uid_flags(c, "Old/2025") == EXPECTED
    typ, data = c.select("Old/2025")
    typ, data = c.fetch("4", "BODY.PEEK[]")
    assert data[0][1] == msg(3)
    c.close()
    # The files moved with their names; nothing is left in INBOX.
    assert files(imapd, ".Old.2025") == inbox_files
    assert files(imapd, "") == []
    # CREATE semantics: the new mailbox and its superior are not
    # subscribed; INBOX still is.
    subscribed = names(c, "LSUB")
    assert "INBOX" in subscribed and "Old/2025" not in subscribed
    assert "Old" not in subscribed
    # INBOX is still selectable and receives new mail, with new UIDs.
    deliver(imapd, 1, 10)
    assert idler.line() == "* 1 EXISTS"
    idler.sock.sendall(b"DONE\r\n")
    line = idler.line()
    if line == "* 1 RECENT":
        line = idler.line()
    assert line == "i OK IDLE terminated"
    typ, data = c.select("INBOX")
    assert typ == "OK" and data[0] == b"1"
    typ, data = c.fetch("1", "(UID)")
    assert b"UID 6" in data[0]
    c.close()
    c.logout()
    # The moved rows count once in the quota usage.
    imapd.release_index()
    db = sqlite3.connect(os.path.join(imapd.user_dir(USER),
                                      "pushmail.sqlite"))
    usage = dict(db.execute("SELECT key, value FROM meta"))
    tomb = db.execute("SELECT count(*), count(DISTINCT modseq) FROM expunged"
                      " e JOIN mailbox m ON m.id = e.mailbox_id"
                      " WHERE m.name = 'INBOX'").fetchone()
    owed = db.execute("SELECT count(*) FROM pending_rename").fetchone()
    db.close()
    assert usage["usage_messages"] == 6
    assert tomb == (5, 5) and owed == (0,)


def test_rename_inbox_refused_and_inferiors(imapd):
    c = login(imapd)
    seed(c, 5)
    assert c.create("Box")[0] == "OK"
    typ, data = c.rename("INBOX", "Box")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0], data
    typ, data = c.rename("INBOX", "inbox")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0], data
    assert status(c, "INBOX")["MESSAGES"] == 5
    # INBOX's inferiors are not renamed with it.
    assert c.create("INBOX/Sub")[0] == "OK"
    assert c.append("INBOX/Sub", None, None, msg(9))[0] == "OK"
    # The session that renames may have INBOX selected itself.
    c.select("INBOX")
    assert c.rename("INBOX", "Saved")[0] == "OK"
    assert c.noop()[0] == "OK"
    assert c.response("EXPUNGE")[1] == [b"1"] * 5
    assert c.search(None, "ALL")[1] == [b""]
    c.close()
    listed = names(c)
    assert "INBOX/Sub" in listed and "Saved/Sub" not in listed
    assert status(c, "INBOX/Sub")["MESSAGES"] == 1
    assert status(c, "Saved")["MESSAGES"] == 5
    # The target may lie under INBOX; an empty INBOX renames too.
    assert c.rename("INBOX", "INBOX/Empty")[0] == "OK"
    assert status(c, "INBOX/Empty")["MESSAGES"] == 0
    assert uid_flags(c, "Saved") == EXPECTED
    c.logout()


def test_subscriptions_follow_rename(imapd):
    c = login(imapd)
    assert c.create("Lists/a/b")[0] == "OK"
    assert c.create("Fresh")[0] == "OK"
    subscribed = names(c, "LSUB")
    assert not {"Lists", "Lists/a", "Lists/a/b", "Fresh"} & subscribed
    assert c.subscribe("Lists")[0] == "OK"
    assert c.subscribe("Lists/a/b")[0] == "OK"
    assert c.subscribe("Shelf/Lists")[0] == "OK"  # no such mailbox
    typ, data = c.rename("Lists", "Shelf/Lists")
    assert typ == "OK", data
    subscribed = names(c, "LSUB")
    assert "Shelf/Lists" in subscribed
    assert "Shelf/Lists/a/b" in subscribed
    assert "Shelf/Lists/a" not in subscribed
    assert "Shelf" not in subscribed
    assert not any(n.startswith("Lists") for n in subscribed), subscribed
    # A subscription outlives DELETE, and CREATE leaves it alone.
    assert c.delete("Shelf/Lists/a/b")[0] == "OK"
    assert c.create("Shelf/Lists/a/b")[0] == "OK"
    assert "Shelf/Lists/a/b" in names(c, "LSUB")
    c.logout()


def test_rename_name_with_only_inferiors(imapd):
    c = login(imapd)
    assert c.create("Top/Child")[0] == "OK"
    assert c.append("Top/Child", None, None, msg(1))[0] == "OK"
    c.logout()
    imapd.check_clean_exit(imapd.stop())
    # Leave "Top" a level that exists only through "Top/Child", as a
    # Maildir++ tree written by another program can.
    udir = imapd.user_dir(USER)
    db = sqlite3.connect(os.path.join(udir, "pushmail.sqlite"))
    db.execute("DELETE FROM mailbox WHERE name = 'Top'")
    db.commit()
    db.close()
    for sub in ("cur", "new", "tmp"):
        os.rmdir(os.path.join(udir, ".Top", sub))
    for f in os.listdir(os.path.join(udir, ".Top")):
        os.unlink(os.path.join(udir, ".Top", f))
    os.rmdir(os.path.join(udir, ".Top"))
    imapd.start()
    c = login(imapd)
    typ, data = c.rename("Top", "Sent")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0], data
    typ, data = c.rename("Top", "Moved")
    assert typ == "OK", data
    listed = names(c)
    assert "Moved/Child" in listed and "Top/Child" not in listed
    assert "Moved" not in listed
    assert status(c, "Moved/Child")["MESSAGES"] == 1
    typ, data = c.rename("Nowhere", "Else")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0], data
    c.logout()


def undo_renames(d, moves, owed):
    """Puts a finished RENAME back in the state a crash right after its
    commit leaves: rows renamed, files and folders not yet, the renames
    recorded as owed."""
    udir = d.user_dir(USER)
    for src, dst in moves:
        os.rename(os.path.join(udir, dst), os.path.join(udir, src))
    db = sqlite3.connect(os.path.join(udir, "pushmail.sqlite"))
    db.executemany("INSERT INTO pending_rename(from_path, to_path)"
                   " VALUES(?, ?)", owed)
    db.commit()
    db.close()


def test_crash_after_commit_recovered(imapd):
    c = login(imapd)
    seed(c, 5)
    assert c.create("Box/Inner")[0] == "OK"
    assert c.append("Box/Inner", None, None, msg(7))[0] == "OK"
    assert c.rename("INBOX", "Kept")[0] == "OK"
    assert c.rename("Box", "Crate")[0] == "OK"
    uv = status(c, "Kept")["UIDVALIDITY"]
    c.logout()
    imapd.check_clean_exit(imapd.stop())
    udir = imapd.user_dir(USER)
    moves, owed = [], []
    for sub in ("new", "cur"):
        for n in sorted(os.listdir(os.path.join(udir, ".Kept", sub))):
            moves.append((f"{sub}/{n}", f".Kept/{sub}/{n}"))
            owed.append((f"{sub}/{n}", f".Kept/{sub}/{n}"))
    moves += [(".Box", ".Crate"), (".Box.Inner", ".Crate.Inner")]
    owed += [(".Box", ".Crate"), (".Box.Inner", ".Crate.Inner")]
    # One of the renames had been made before the crash.
    moves.pop(0)
    undo_renames(imapd, moves, owed)
    assert len(files(imapd, "")) == 4
    imapd.start()
    assert "action=expunge" not in imapd.log()
    c = login(imapd)
    assert uid_flags(c, "Kept") == EXPECTED
    assert status(c, "Kept")["UIDVALIDITY"] == uv
    assert status(c, "INBOX")["MESSAGES"] == 0
    assert status(c, "Crate/Inner")["MESSAGES"] == 1
    assert files(imapd, "") == []
    assert not os.path.exists(os.path.join(udir, ".Box"))
    c.logout()
    imapd.release_index()
    db = sqlite3.connect(os.path.join(udir, "pushmail.sqlite"))
    assert db.execute("SELECT count(*) FROM pending_rename").fetchone() \
        == (0,)
    db.close()
