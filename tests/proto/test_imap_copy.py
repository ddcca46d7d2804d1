"""IMAP COPY, UID COPY, MOVE and UID MOVE against the real daemon: COPYUID
(RFC 4315), the copies read back byte for byte, MOVE's untagged COPYUID
and EXPUNGE lines (RFC 6851), a session idling on the destination hearing
EXISTS, TRYCREATE, and the copy's Maildir file as a hard link carrying
its new UID."""
import imaplib
import os
import re
import select
import socket

import pytest

from conftest import Daemon

USER = "alice@example.org"
PW = "secret"


def msg(i):
    return (b"From: a@example.org\r\nTo: b@example.org\r\n"
            b"Subject: copy %d\r\n\r\nBody %d\r\n" % (i, i))


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


def seed(c, n, flags=r"(\Seen)"):
    for i in range(1, n + 1):
        assert c.append("INBOX", flags, None, msg(i))[0] == "OK"


def raw(d):
    sock = socket.create_connection(("127.0.0.1", d.ports["imap"]), 10)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    sock.sendall(f"l LOGIN {USER} {PW}\r\n".encode())
    while not f.readline().startswith(b"l OK"):
        pass
    return sock, f


def until(f, tag):
    lines = []
    while True:
        line = f.readline()
        assert line, lines
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines


def copyuid(data):
    m = re.search(rb"\[COPYUID (\d+) ([0-9:,]+) ([0-9:,]+)\]", data)
    assert m, data
    return int(m.group(1)), m.group(2), m.group(3)


def test_copy_to_trash_with_copyuid_and_links(imapd):
    c = login(imapd)
    caps = c.capability()[1][0].decode().split()
    assert "UIDPLUS" in caps and "MOVE" in caps
    seed(c, 3)
    c.select("INBOX")
    typ, data = c.copy("2:3", "Trash")
    assert typ == "OK", data
    v, src, dst = copyuid(data[0])
    assert (src, dst) == (b"2:3", b"1:2")
    typ, st = c.status("Trash", "(UIDVALIDITY MESSAGES)")
    assert b"UIDVALIDITY %d" % v in st[0] and b"MESSAGES 2" in st[0]
    # The copies read back byte for byte, flags kept.
    c.select("Trash")
    typ, data = c.uid("FETCH", "1:2", "(FLAGS BODY.PEEK[])")
    bodies = [d[1] for d in data if isinstance(d, tuple)]
    assert bodies == [msg(2), msg(3)]
    assert all(b"\\Seen" in d[0] for d in data if isinstance(d, tuple))
    # The file in .Trash/cur carries U=1 and is the source's inode.
    udir = imapd.user_dir(USER)
    names = sorted(os.listdir(os.path.join(udir, ".Trash", "cur")))
    assert len(names) == 2 and ",U=1," in names[0], names
    trash1 = os.path.join(udir, ".Trash", "cur", names[0])
    assert os.stat(trash1).st_nlink == 2
    # Once the source is expunged, only the copy holds the file.
    c.select("INBOX")
    c.store("2", "+FLAGS", r"(\Deleted)")
    c.expunge()
    assert os.stat(trash1).st_nlink == 1
    c.logout()


def test_uid_copy_and_trycreate(imapd):
    c = login(imapd)
    seed(c, 3)
    typ, data = c.select("INBOX")
    typ, data = c.copy("1", "Nope")
    assert typ == "NO" and data[0].startswith(b"[TRYCREATE]"), data
    c.logout()
    # imaplib drops the tagged text of UID COPY: speak it directly.
    sock, f = raw(imapd)
    sock.sendall(b"s SELECT INBOX\r\n")
    until(f, b"s")
    sock.sendall(b"a UID COPY 3,1 Archive\r\n")
    line = until(f, b"a")[-1]
    assert line.startswith(b"a OK"), line
    assert copyuid(line)[1:] == (b"1,3", b"1:2"), line
    sock.sendall(b"b UID COPY 1 Nope\r\n")
    line = until(f, b"b")[-1]
    assert line.startswith(b"b NO [TRYCREATE]"), line
    # A UID set naming nothing copies nothing and succeeds.
    sock.sendall(b"c UID COPY 99 Archive\r\n")
    line = until(f, b"c")[-1]
    assert line.startswith(b"c OK") and b"COPYUID" not in line, line
    sock.close()


def test_move_reports_copyuid_then_expunge(imapd):
    c = login(imapd)
    seed(c, 3)
    c.logout()
    sock, f = raw(imapd)
    sock.sendall(b"s SELECT INBOX\r\n")
    until(f, b"s")
    sock.sendall(b"m MOVE 1:2 Trash\r\n")
    lines = until(f, b"m")
    assert lines[0].startswith(b"* OK [COPYUID "), lines
    v, src, dst = copyuid(lines[0])
    assert (src, dst) == (b"1:2", b"1:2")
    assert lines[1:3] == [b"* 1 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"], lines
    assert lines[-1].startswith(b"m OK MOVE"), lines
    sock.sendall(b"u UID MOVE 3 Trash\r\n")
    lines = until(f, b"u")
    assert copyuid(lines[0])[1:] == (b"3", b"3"), lines
    assert lines[1] == b"* 1 EXPUNGE\r\n", lines
    assert lines[-1].startswith(b"u OK UID MOVE"), lines
    sock.close()
    c = login(imapd)
    typ, st = c.status("INBOX", "(MESSAGES)")
    assert b"MESSAGES 0" in st[0]
    c.select("Trash")
    typ, data = c.uid("FETCH", "1:3", "(BODY.PEEK[])")
    bodies = [d[1] for d in data if isinstance(d, tuple)]
    assert bodies == [msg(1), msg(2), msg(3)]
    udir = imapd.user_dir(USER)
    for n in os.listdir(os.path.join(udir, ".Trash", "cur")):
        assert os.stat(os.path.join(udir, ".Trash", "cur", n)).st_nlink == 1
    assert os.listdir(os.path.join(udir, "cur")) == []
    c.logout()


def test_copy_seen_by_idling_session(imapd):
    c = login(imapd)
    seed(c, 2, None)
    sock, f = raw(imapd)
    sock.sendall(b"s SELECT Trash\r\n")
    until(f, b"s")
    sock.sendall(b"i IDLE\r\n")
    assert f.readline().startswith(b"+")
    c.select("INBOX")
    assert c.copy("1:2", "Trash")[0] == "OK"
    assert select.select([sock], [], [], 5)[0]
    got = f.readline()
    assert got in (b"* 1 EXISTS\r\n", b"* 2 EXISTS\r\n"), got
    sock.sendall(b"DONE\r\n")
    lines = until(f, b"i")
    assert b"* 2 EXISTS\r\n" in [got] + lines
    # Without flags the copies went to .Trash/new.
    udir = imapd.user_dir(USER)
    assert len(os.listdir(os.path.join(udir, ".Trash", "new"))) == 2
    c.logout()
    sock.close()


def test_copy_over_quota(tmp_path):
    d = Daemon(tmp_path)
    d.add_user(USER, PW)
    path = d.data + "/users"
    lines = []
    for line in open(path).read().splitlines():
        if line.startswith(USER + ":"):
            fields = line.split(":")
            fields += [""] * (8 - len(fields))
            fields[7] = "quota=2K"
            line = ":".join(fields)
        lines.append(line)
    open(path, "w").write("\n".join(lines) + "\n")
    d.start()
    try:
        c = login(d)
        big = msg(1) + b"x" * 1200
        assert c.append("INBOX", None, None, big)[0] == "OK"
        c.select("INBOX")
        typ, data = c.copy("1", "Trash")
        assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]"), data
        assert b"MESSAGES 0" in c.status("Trash", "(MESSAGES)")[1][0]
        c.logout()
    finally:
        d.check_clean_exit(d.stop())
