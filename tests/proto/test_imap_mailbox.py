"""IMAP mailbox access and push: SELECT/EXAMINE (rev1 and IMAP4rev2), \\Recent,
CLOSE/UNSELECT, LIST (LIST-EXTENDED, SPECIAL-USE, LIST-STATUS), LSUB, STATUS,
and IDLE hearing deliveries over SMTP and LMTP, several sessions at once.
"""
import imaplib
import os
import select
import smtplib
import sqlite3
import subprocess
import time

import pytest

from conftest import Daemon

USER = "alice@example.org"
OTHER = "bob@example.org"


class Imap:
    """A scripted IMAP client on a plain socket, logged in."""

    def __init__(self, port, user=USER):
        import socket
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.buf = b""
        assert self.line().startswith("* OK ")
        self.cmd("l", f"LOGIN {user} secret")

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

    def pending(self, wait=0.3):
        """Whether anything arrives within wait seconds."""
        if self.buf:
            return True
        return bool(select.select([self.sock], [], [], wait)[0])

    def close(self):
        self.sock.close()


def mailbox_row(d, user, name, special=None):
    """Adds a mailbox to a user's index before the daemon starts."""
    udir = d.user_dir(user)
    sub = "." + name.replace("/", ".")
    for part in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(udir, sub, part), exist_ok=True)
    db = sqlite3.connect(os.path.join(udir, "pushmail.sqlite"))
    db.execute("INSERT INTO mailbox(name, dir, uidvalidity, special_use) "
               "VALUES(?, ?, 4242, ?)", (name, sub, special))
    db.commit()
    db.close()


def subscribe_row(d, user, name):
    db = sqlite3.connect(os.path.join(d.user_dir(user), "pushmail.sqlite"))
    db.execute("INSERT INTO subscription(name) VALUES(?)", (name,))
    db.commit()
    db.close()


@pytest.fixture
def imapd(tmp_path):
    d = Daemon(tmp_path)
    d.add_user(USER)
    d.add_user(OTHER)
    mailbox_row(d, USER, "Sent/2024")
    mailbox_row(d, USER, "Entwürfe")
    subscribe_row(d, USER, "Gone")
    d.start()
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


def send_smtp(d, rcpt=USER, subject="hi"):
    """Delivers one message over SMTP; returns when the 250 arrived."""
    s = smtplib.SMTP("127.0.0.1", d.ports["smtp"], timeout=10)
    s.sendmail("sender@remote.example", [rcpt],
               f"Subject: {subject}\r\n\r\nbody\r\n".encode())
    t = time.perf_counter()
    s.quit()
    return t


def send_lmtp(d, rcpt=USER):
    s = smtplib.LMTP(d.lmtp_path())
    s.sendmail("sender@remote.example", [rcpt], b"Subject: l\r\n\r\nlmtp\r\n")
    s.quit()


def lmtp_path(self):
    return os.path.join(self.data, "lmtp.sock")


Daemon.lmtp_path = lmtp_path


def test_capabilities(imapd):
    c = Imap(imapd.ports["imap"])
    lines, tagged = c.cmd("a", "CAPABILITY")
    caps = lines[0].split()
    for cap in ("IDLE", "UNSELECT", "CHILDREN", "LIST-EXTENDED",
                "LIST-STATUS", "SPECIAL-USE", "STATUS=SIZE"):
        assert cap in caps
    c.close()


def test_select_rev1(imapd):
    send_smtp(imapd)
    send_smtp(imapd)
    c = Imap(imapd.ports["imap"])
    lines, tagged = c.cmd("a", "SELECT INBOX")
    assert tagged == "a OK [READ-WRITE] SELECT completed"
    assert lines[0] == "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"
    assert "* 2 EXISTS" in lines and "* 2 RECENT" in lines
    assert any(x.startswith("* OK [UNSEEN 1]") for x in lines)
    assert any(x.startswith("* OK [PERMANENTFLAGS (\\Answered") and "\\*" in x
               for x in lines)
    assert any(x.startswith("* OK [UIDNEXT 3]") for x in lines)
    assert any(x.startswith("* OK [UIDVALIDITY ") for x in lines)
    assert not any(x.startswith("* LIST") for x in lines)
    # A second session finds the \Recent already claimed.
    c2 = Imap(imapd.ports["imap"])
    lines, tagged = c2.cmd("a", "SELECT inbox")
    assert tagged.startswith("a OK [READ-WRITE]")
    assert "* 2 EXISTS" in lines and "* 0 RECENT" in lines
    c.close()
    c2.close()


def test_examine_does_not_claim_recent(imapd):
    send_smtp(imapd)
    c = Imap(imapd.ports["imap"])
    lines, tagged = c.cmd("a", "EXAMINE INBOX")
    assert tagged == "a OK [READ-ONLY] EXAMINE completed"
    assert "* OK [PERMANENTFLAGS ()] Read-only" in lines
    assert "* 1 RECENT" in lines
    lines, _ = c.cmd("b", "SELECT INBOX")
    assert "* 1 RECENT" in lines
    lines, _ = c.cmd("c", "EXAMINE INBOX")
    assert "* 0 RECENT" in lines
    c.close()


def test_select_rev2_and_closed(imapd):
    send_smtp(imapd)
    c = Imap(imapd.ports["imap"])
    lines, _ = c.cmd("e", "ENABLE IMAP4rev2")
    assert lines == ["* ENABLED IMAP4rev2"]
    lines, tagged = c.cmd("a", "SELECT INBOX")
    assert tagged.startswith("a OK [READ-WRITE]")
    assert "* 1 EXISTS" in lines
    assert not any("RECENT" in x or "UNSEEN" in x for x in lines)
    assert '* LIST () "/" "INBOX"' in lines
    lines, tagged = c.cmd("b", "EXAMINE Sent")
    assert lines[0] == "* OK [CLOSED] Previous mailbox closed"
    assert tagged.startswith("b OK [READ-ONLY]")
    c.close()


def test_failed_select_leaves_unselected(imapd):
    c = Imap(imapd.ports["imap"])
    assert c.cmd("a", "SELECT INBOX")[1].startswith("a OK")
    assert c.cmd("b", "SELECT Nosuch")[1] == \
        "b NO [NONEXISTENT] No such mailbox"
    assert c.cmd("c", "CLOSE")[1].startswith("c BAD")
    for bad in ('"a//b"', '"&Jjo"', '"../x"', '""'):
        assert c.cmd("d", f"SELECT {bad}")[1].startswith("d NO [NONEXISTENT]")
    assert c.cmd("e", "SELECT")[1].startswith("e BAD")
    assert c.cmd("f", "SELECT NIL")[1].startswith("f BAD")
    c.close()


def test_close_and_unselect(imapd):
    c = Imap(imapd.ports["imap"])
    c.cmd("a", "SELECT INBOX")
    assert c.cmd("b", "UNSELECT")[1] == "b OK UNSELECT completed"
    assert c.cmd("c", "UNSELECT")[1].startswith("c BAD")
    c.cmd("d", "EXAMINE INBOX")
    assert c.cmd("e", "CLOSE")[1] == "e OK CLOSE completed"
    assert c.cmd("f", "FETCH 1 FLAGS")[1].startswith("f BAD")
    c.close()


def test_utf7_names(imapd):
    c = Imap(imapd.ports["imap"])
    lines, _ = c.cmd("a", 'LIST "" "Entw*"')
    assert lines == ['* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"']
    lines, tagged = c.cmd("b", 'SELECT "Entw&APw-rfe"')
    assert tagged.startswith("b OK")
    c.cmd("e", "UNSELECT")
    c.cmd("c", "ENABLE UTF8=ACCEPT")
    lines, _ = c.cmd("d", 'LIST "" "Entw*"')
    assert lines == ['* LIST (\\HasNoChildren) "/" "Entwürfe"']
    c.close()


def list_names(lines, kind="LIST"):
    out = {}
    for x in lines:
        assert x.startswith(f"* {kind} (")
        attrs, rest = x[len(kind) + 4:].split(") ", 1)
        assert rest.startswith('"/" ')
        out[rest[4:].strip('"')] = attrs.split()
    return out


def test_list_patterns_and_attributes(imapd):
    c = Imap(imapd.ports["imap"])
    lines, tagged = c.cmd("a", 'LIST "" *')
    assert tagged == "a OK LIST completed"
    names = list_names(lines)
    assert set(names) == {"INBOX", "Sent", "Sent/2024", "Drafts", "Trash",
                          "Junk", "Archive", "Entw&APw-rfe"}
    assert names["Sent"] == ["\\HasChildren", "\\Sent"]
    assert names["Sent/2024"] == ["\\HasNoChildren"]
    assert "\\Trash" in names["Trash"] and "\\Junk" in names["Junk"]
    assert "\\Drafts" in names["Drafts"] and "\\Archive" in names["Archive"]
    assert c.cmd("b", 'LIST "" ""')[0] == ['* LIST (\\Noselect) "/" ""']
    assert set(list_names(c.cmd("c", 'LIST "" %')[0])) == \
        set(names) - {"Sent/2024"}
    assert set(list_names(c.cmd("d", 'LIST "" "Sent/%"')[0])) == \
        {"Sent/2024"}
    assert set(list_names(c.cmd("e", 'LIST "" inbox')[0])) == {"INBOX"}
    assert set(list_names(c.cmd("f", 'LIST "Sent/" *')[0])) == \
        {"Sent/2024"}
    assert set(list_names(c.cmd("g", 'LIST "" "*ra*"')[0])) == \
        {"Drafts", "Trash"}
    assert c.cmd("h", "LIST")[1].startswith("h BAD")
    assert c.cmd("i", 'LIST "" * RETURN (BOGUS)')[1].startswith("i BAD")
    assert c.cmd("j", 'LIST (RECURSIVEMATCH) "" *')[1].startswith("j BAD")
    lines, _ = c.cmd("k", 'LIST "" "' + "*%" * 200 + 'x"')
    assert lines == []
    c.close()


def test_list_extended(imapd):
    c = Imap(imapd.ports["imap"])
    names = list_names(c.cmd("a", 'LIST (SPECIAL-USE) "" *')[0])
    assert set(names) == {"Sent", "Drafts", "Trash", "Junk", "Archive"}
    names = list_names(c.cmd("b", 'LIST (SUBSCRIBED) "" *')[0])
    assert names["Gone"] == ["\\NonExistent", "\\Subscribed"]
    assert "\\Subscribed" in names["INBOX"]
    assert "Sent/2024" not in names
    names = list_names(c.cmd("c", 'LIST "" * RETURN (SUBSCRIBED CHILDREN)')
                       [0])
    assert "\\Subscribed" in names["INBOX"]
    assert "\\Subscribed" not in names["Sent/2024"]
    assert "Gone" not in names
    names = list_names(c.cmd("d", 'LIST "" (INBOX Trash) RETURN '
                                  '(SPECIAL-USE)')[0])
    assert set(names) == {"INBOX", "Trash"}
    c.close()


def test_list_status(imapd):
    send_smtp(imapd)
    c = Imap(imapd.ports["imap"])
    lines, tagged = c.cmd("a", 'LIST "" "IN*" RETURN (STATUS (MESSAGES '
                               'UNSEEN SIZE UIDNEXT))')
    assert tagged == "a OK LIST completed"
    assert lines[0] == '* LIST (\\HasNoChildren) "/" "INBOX"'
    assert lines[1].startswith('* STATUS "INBOX" (MESSAGES 1 UIDNEXT 2 '
                               'UNSEEN 1 SIZE ')
    assert len(lines) == 2
    c.close()


def test_lsub(imapd):
    c = Imap(imapd.ports["imap"])
    names = list_names(c.cmd("a", 'LSUB "" *')[0], "LSUB")
    assert names["Gone"] == ["\\Noselect"]
    assert names["INBOX"] == []
    assert "Sent/2024" not in names
    assert c.cmd("b", "LSUB foo")[1].startswith("b BAD")
    c.close()


def test_status(imapd):
    send_smtp(imapd)
    c = Imap(imapd.ports["imap"])
    lines, tagged = c.cmd("a", "STATUS INBOX (MESSAGES RECENT UIDNEXT "
                               "UIDVALIDITY UNSEEN SIZE)")
    assert tagged == "a OK STATUS completed"
    assert lines[0].startswith('* STATUS "INBOX" (MESSAGES 1 RECENT 1 '
                               'UIDNEXT 2 UIDVALIDITY ')
    assert lines[0].endswith(")") and "UNSEEN 1 SIZE " in lines[0]
    assert c.cmd("b", "STATUS Nosuch (MESSAGES)")[1] == \
        "b NO [NONEXISTENT] No such mailbox"
    assert c.cmd("c", "STATUS Gone (MESSAGES)")[1].startswith("c NO")
    assert c.cmd("d", "STATUS INBOX (BOGUS)")[1].startswith("d BAD")
    assert c.cmd("e", "STATUS INBOX ()")[1].startswith("e BAD")
    c.cmd("f", "ENABLE IMAP4rev2")
    assert c.cmd("g", "STATUS INBOX (RECENT)")[1].startswith("g BAD")
    lines, _ = c.cmd("h", "STATUS inbox (MESSAGES DELETED)")
    assert lines == ['* STATUS "INBOX" (MESSAGES 1 DELETED 0)']
    send_smtp(imapd)
    w = Imap(imapd.ports["imap"])
    w.cmd("s", "SELECT INBOX")
    assert w.cmd("t", "STORE 2 +FLAGS.SILENT (\\Deleted)")[1] == \
        "t OK STORE completed"
    lines, _ = c.cmd("i", "STATUS inbox (MESSAGES DELETED)")
    assert lines == ['* STATUS "INBOX" (MESSAGES 2 DELETED 1)']
    lines, _ = c.cmd("j", 'LIST "" INBOX RETURN (STATUS (DELETED))')
    assert lines[1] == '* STATUS "INBOX" (DELETED 1)'
    w.close()
    c.close()


def test_list_levels_and_childinfo(tmp_path):
    """A trailing % lists the levels above mailboxes (RFC 3501 6.3.8) and
    subscriptions (LSUB, 6.3.9); RECURSIVEMATCH answers parents whose
    descendants meet the criteria with CHILDINFO (RFC 5258 3.5)."""
    d = Daemon(tmp_path)
    d.add_user(USER)
    mailbox_row(d, USER, "Lists/dev")
    subscribe_row(d, USER, "Lists/dev")
    subscribe_row(d, USER, "Old/2019")
    d.start()
    try:
        c = Imap(d.ports["imap"])
        names = list_names(c.cmd("a", 'LIST "" %')[0])
        assert names["Lists"] == ["\\Noselect", "\\HasChildren"]
        assert "Lists/dev" not in names and "Old" not in names
        names = list_names(c.cmd("b", 'LIST "" *')[0])
        assert "Lists" not in names
        assert names["Lists/dev"] == ["\\HasNoChildren"]
        names = list_names(c.cmd("c", 'LIST "" "Li%"')[0])
        assert set(names) == {"Lists"}
        names = list_names(c.cmd("d", 'LSUB "" %')[0], "LSUB")
        assert names["Lists"] == ["\\Noselect"]
        assert names["Old"] == ["\\Noselect"]
        assert names["INBOX"] == []
        assert "Lists/dev" not in names and "Old/2019" not in names
        names = list_names(c.cmd("e", 'LSUB "" *')[0], "LSUB")
        assert "Lists" not in names and names["Lists/dev"] == []
        assert names["Old/2019"] == ["\\Noselect"]
        names = list_names(c.cmd("f", 'LIST (SUBSCRIBED) "" %')[0])
        assert "Lists" not in names and "Old" not in names
        lines = c.cmd("g", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" %')[0]
        assert '* LIST (\\NonExistent \\HasChildren) "/" "Lists" '\
            '("CHILDINFO" ("SUBSCRIBED"))' in lines
        assert '* LIST (\\NonExistent) "/" "Old" ("CHILDINFO" '\
            '("SUBSCRIBED"))' in lines
        assert not any('"Lists/dev"' in x for x in lines)
        lines = c.cmd("h", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" *')[0]
        assert '* LIST (\\HasNoChildren \\Subscribed) "/" "Lists/dev"' \
            in lines
        assert '* LIST (\\NonExistent \\Subscribed) "/" "Old/2019"' \
            in lines
        assert any(x.startswith('* LIST (\\NonExistent \\HasChildren) "/" '
                                '"Lists" (')
                   for x in lines)
        c.cmd("i", "ENABLE IMAP4rev2")
        names = list_names(c.cmd("j", 'LIST "" %')[0])
        assert names["Lists"] == ["\\NonExistent", "\\HasChildren"]
        c.close()
    finally:
        d.check_clean_exit(d.stop())


def idle(c, tag="i"):
    c.send(f"{tag} IDLE")
    assert c.line() == "+ idling"


def test_idle_push_smtp_and_lmtp(imapd):
    c = Imap(imapd.ports["imap"])
    c.cmd("a", "SELECT INBOX")
    idle(c)
    t250 = send_smtp(imapd)
    assert c.line() == "* 1 EXISTS"
    ms = (time.perf_counter() - t250) * 1000
    print(f"push latency SMTP 250 -> EXISTS: {ms:.2f} ms")
    assert c.line() == "* 1 RECENT"
    send_lmtp(imapd)
    assert c.line() == "* 2 EXISTS"
    assert c.line() == "* 2 RECENT"
    c.send("DONE")
    assert c.line() == "i OK IDLE terminated"
    # Outside IDLE, the news wait for the next command.
    send_smtp(imapd)
    assert not c.pending(0.3)
    lines, tagged = c.cmd("b", "NOOP")
    assert lines == ["* 3 EXISTS", "* 3 RECENT"]
    assert tagged == "b OK NOOP completed"
    c.close()


def test_idle_several_sessions_and_users(imapd):
    a = Imap(imapd.ports["imap"])
    b = Imap(imapd.ports["imap"])
    other = Imap(imapd.ports["imap"], OTHER)
    for c in (a, b, other):
        c.cmd("s", "SELECT INBOX")
        idle(c)
    send_smtp(imapd)
    assert a.line() == "* 1 EXISTS"
    assert b.line() == "* 1 EXISTS"
    # b selected last: the new message is \Recent for b alone.
    assert b.line() == "* 1 RECENT"
    assert not a.pending(0.3)
    assert not other.pending(0.3)
    for c in (a, b, other):
        c.send("DONE")
    for c in (a, b, other):
        assert c.line() == "i OK IDLE terminated"
    for c in (a, b, other):
        c.close()


def test_idle_in_authenticated_state_and_errors(imapd):
    c = Imap(imapd.ports["imap"])
    idle(c, "x")
    send_smtp(imapd)
    assert not c.pending(0.3)
    c.send("DONE")
    assert c.line() == "x OK IDLE terminated"
    idle(c, "y")
    c.send("NOOP")
    assert c.line() == "y BAD Expected DONE"
    assert c.cmd("z", "IDLE now")[1].startswith("z BAD")
    # DONE pipelined right behind IDLE.
    c.send("w IDLE\r\nDONE\r\nv NOOP")
    assert c.line() == "+ idling"
    assert c.line() == "w OK IDLE terminated"
    assert c.line() == "v OK NOOP completed"
    c.close()


def test_logout_while_idle_and_select_pending(imapd):
    c = Imap(imapd.ports["imap"])
    c.cmd("a", "SELECT INBOX")
    idle(c)
    c.close()
    c = Imap(imapd.ports["imap"])
    c.send("a SELECT INBOX")
    c.close()
    time.sleep(0.2)
    send_smtp(imapd)


def test_imaplib_client(imapd):
    send_smtp(imapd)
    m = imaplib.IMAP4("127.0.0.1", imapd.ports["imap"])
    m.login(USER, "secret")
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    typ, data = m.status("INBOX", "(MESSAGES UNSEEN)")
    assert data == [b'"INBOX" (MESSAGES 1 UNSEEN 1)']
    typ, data = m.list()
    assert typ == "OK" and len(data) == 8
    typ, data = m.lsub()
    assert typ == "OK"
    m.close()
    m.logout()


def test_curl_lists_inbox(imapd):
    send_smtp(imapd)
    r = subprocess.run(["curl", "-sS", "--max-time", "10",
                        f"imap://127.0.0.1:{imapd.ports['imap']}/",
                        "-u", f"{USER}:secret"],
                       capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert b'"/" "INBOX"' in r.stdout
    r = subprocess.run(["curl", "-sS", "--max-time", "10",
                        f"imap://127.0.0.1:{imapd.ports['imap']}/",
                        "-X", "STATUS INBOX (MESSAGES)", "-u",
                        f"{USER}:secret"],
                       capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert b'* STATUS "INBOX" (MESSAGES 1)' in r.stdout


def test_shutdown_with_idle_sessions(imapd):
    """The daemon stops cleanly with sessions selected, idling and waiting."""
    a = Imap(imapd.ports["imap"])
    a.cmd("a", "SELECT INBOX")
    idle(a)
    b = Imap(imapd.ports["imap"])
    b.cmd("b", "EXAMINE Sent")
    b.send("c SELECT INBOX")
    imapd.check_clean_exit(imapd.stop())
    a.close()
    b.close()
