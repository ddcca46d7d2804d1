"""IMAP APPEND with UIDPLUS against the real daemon: flags and INTERNALDATE,
the message read back byte for byte, APPENDUID, TRYCREATE, OVERQUOTA, a
literal over APPENDLIMIT refused before "+", UIDs continuing from UIDNEXT,
and a second session idling on the target hearing EXISTS at once."""
import imaplib
import os
import re
import select
import smtplib
import socket

import pytest

from conftest import Daemon

USER = "alice@example.org"
PW = "secret"
MSG = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: appended\r\n"
       b"\r\nHello\r\nthere\r\n")


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


def test_append_flags_date_and_fetch_back(imapd):
    c = login(imapd)
    typ, data = c.capability()
    caps = data[0].decode().split()
    # UIDPLUS: APPENDUID here, COPYUID in test_imap_copy.py (RFC 4315).
    assert "UIDPLUS" in caps and "APPENDLIMIT=67108864" in caps
    typ, data = c.append("Sent", r"(\Seen \Flagged)",
                         '"05-Mar-2024 10:11:12 +0100"', MSG)
    assert typ == "OK", data
    m = re.match(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
    assert m and int(m.group(2)) == 1, data
    c.select("Sent")
    typ, data = c.uid("FETCH", "1", "(FLAGS INTERNALDATE BODY.PEEK[])")
    head = data[0][0].decode()
    assert "\\Seen" in head and "\\Flagged" in head
    assert 'INTERNALDATE "05-Mar-2024 09:11:12 +0000"' in head \
        or 'INTERNALDATE "05-Mar-2024 10:11:12 +0100"' in head, head
    assert data[0][1] == MSG
    # The file is in Sent's cur/ with its flag letters and its UID.
    cur = os.path.join(imapd.user_dir(USER), ".Sent", "cur")
    names = os.listdir(cur)
    assert len(names) == 1 and ",U=1," in names[0]
    assert names[0].endswith(":2,FS")
    c.logout()


def test_append_uids_continue_and_no_flags_in_new(imapd):
    s = smtplib.SMTP("127.0.0.1", imapd.ports["smtp"], timeout=10)
    s.sendmail("x@remote.example", [USER], MSG)
    s.quit()
    c = login(imapd)
    typ, data = c.status("INBOX", "(UIDNEXT)")
    nxt = int(re.search(rb"UIDNEXT (\d+)", data[0]).group(1))
    typ, data = c.append("INBOX", None, None, MSG)
    assert typ == "OK"
    assert re.match(rb"\[APPENDUID \d+ %d\]" % nxt, data[0]), data
    assert len(imapd.messages(USER)) == 2
    c.logout()


def test_append_trycreate_and_bad(imapd):
    c = login(imapd)
    typ, data = c.append("Nope", None, None, MSG)
    assert typ == "NO" and data[0].startswith(b"[TRYCREATE]")
    with pytest.raises(imaplib.IMAP4.error):
        c.append("INBOX", None, '"31-Foo-2024 10:11:12 +0100"', MSG)
    c.logout()


def raw(d):
    sock = socket.create_connection(("127.0.0.1", d.ports["imap"]), 10)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    sock.sendall(f"l LOGIN {USER} {PW}\r\n".encode())
    while not f.readline().startswith(b"l OK"):
        pass
    return sock, f


def test_append_over_limit_refused_before_continuation(imapd):
    sock, f = raw(imapd)
    sock.sendall(b"a APPEND INBOX {67108865}\r\n")
    line = f.readline()
    assert line.startswith(b"a NO [TOOBIG]"), line
    sock.sendall(b"b NOOP\r\n")
    assert f.readline().startswith(b"b OK")
    sock.close()


def test_append_over_quota(tmp_path):
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
        assert c.append("INBOX", None, None, MSG)[0] == "OK"
        typ, data = c.append("INBOX", None, None, MSG + b"x" * 3000)
        assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]"), data
        c.logout()
    finally:
        d.check_clean_exit(d.stop())


def test_append_seen_by_idling_session(imapd):
    sock, f = raw(imapd)
    sock.sendall(b"s SELECT Sent\r\n")
    while not f.readline().startswith(b"s OK"):
        pass
    sock.sendall(b"i IDLE\r\n")
    assert f.readline().startswith(b"+")
    c = login(imapd)
    assert c.append("Sent", None, None, MSG)[0] == "OK"
    assert select.select([sock], [], [], 5)[0]
    assert f.readline() == b"* 1 EXISTS\r\n"
    sock.sendall(b"DONE\r\n")
    line = f.readline()
    while not line.startswith(b"i OK"):
        line = f.readline()
    c.logout()
    sock.close()
