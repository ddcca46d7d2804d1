"""IMAP CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE against the real
daemon: LIST and LSUB reflect them, messages and UIDVALIDITY follow a
rename, a re-created mailbox gets a new UIDVALIDITY, and INBOX, existing
names, mailboxes with inferiors and hostile names are refused with their
response codes."""
import imaplib
import os
import re
import sqlite3

import pytest

from conftest import Daemon

USER = "alice@example.org"
PW = "secret"
MSG = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"


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


def uidvalidity(c, name):
    typ, data = c.status(name, "(UIDVALIDITY)")
    assert typ == "OK", data
    return int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))


def test_create_list_append_rename_delete(imapd):
    c = login(imapd)
    assert c.create("Projects")[0] == "OK"
    assert "Projects" in names(c)
    assert os.path.isdir(os.path.join(imapd.user_dir(USER), ".Projects",
                                      "cur"))
    assert c.append("Projects", None, None, MSG)[0] == "OK"
    uv = uidvalidity(c, "Projects")
    typ, data = c.rename("Projects", "Older")
    assert typ == "OK", data
    listed = names(c)
    assert "Older" in listed and "Projects" not in listed
    assert uidvalidity(c, "Older") == uv
    typ, data = c.select("Older")
    assert typ == "OK" and data[0] == b"1"
    typ, data = c.fetch("1", "BODY.PEEK[]")
    assert data[0][1] == MSG
    c.close()
    assert c.delete("Older")[0] == "OK"
    assert "Older" not in names(c)
    assert not os.path.exists(os.path.join(imapd.user_dir(USER),
                                           ".Older"))
    typ, data = c.select("Older")
    assert typ == "NO"
    imapd.release_index()
    db = sqlite3.connect(os.path.join(imapd.user_dir(USER),
                                      "pushmail.sqlite"))
    usage = dict(db.execute("SELECT key, value FROM meta"))
    db.close()
    assert usage["usage_messages"] == 0 and usage["usage_bytes"] == 0
    c.logout()


def test_refusals(imapd):
    c = login(imapd)
    typ, data = c.delete("INBOX")
    assert typ == "NO", data
    assert c.create("Box")[0] == "OK"
    typ, data = c.create("Box")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0], data
    typ, data = c.delete("Nope")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0], data
    typ, data = c.rename("Nope", "Other")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0], data
    typ, data = c.rename("Box", "Sent")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0], data
    for bad in ("../x", "a/../b", "./y", "a//b"):
        typ, data = c.create(bad)
        assert typ == "NO", (bad, data)
    listed = names(c)
    assert not any(".." in n for n in listed), listed
    assert not os.path.exists(os.path.join(imapd.user_dir(USER), "..", "x"))
    c.logout()


def test_hierarchy(imapd):
    c = login(imapd)
    assert c.create("Work/2026/")[0] == "OK"
    listed = names(c)
    assert "Work" in listed and "Work/2026" in listed
    typ, data = c.delete("Work")
    assert typ == "NO" and b"[HASCHILDREN]" in data[0], data
    assert c.append("Work/2026", None, None, MSG)[0] == "OK"
    assert c.rename("Work", "Job")[0] == "OK"
    listed = names(c)
    assert "Job/2026" in listed and "Work/2026" not in listed
    typ, data = c.status("Job/2026", "(MESSAGES)")
    assert b"MESSAGES 1" in data[0]
    assert c.delete("Job/2026")[0] == "OK"
    assert c.delete("Job")[0] == "OK"
    c.logout()


def test_subscriptions(imapd):
    c = login(imapd)
    assert c.create("Lists")[0] == "OK"
    assert c.unsubscribe("Lists")[0] == "OK"
    assert "Lists" not in names(c, "LSUB")
    assert c.subscribe("Lists")[0] == "OK"
    assert "Lists" in names(c, "LSUB")
    assert c.unsubscribe("Lists")[0] == "OK"
    assert "Lists" not in names(c, "LSUB")
    assert c.unsubscribe("Never")[0] == "OK"
    c.logout()


def test_uidvalidity_new_after_recreate(imapd):
    c = login(imapd)
    assert c.create("Again")[0] == "OK"
    first = uidvalidity(c, "Again")
    assert c.delete("Again")[0] == "OK"
    assert c.create("Again")[0] == "OK"
    assert uidvalidity(c, "Again") != first
    c.logout()


def test_utf7_name(imapd):
    c = login(imapd)
    assert c.create("&AOk-t&AOk-")[0] == "OK"  # "été"
    assert "&AOk-t&AOk-" in names(c)
    assert c.delete("&AOk-t&AOk-")[0] == "OK"
    c.logout()


def test_delete_selected_elsewhere(imapd):
    a = login(imapd)
    b = login(imapd)
    assert a.create("Shared")[0] == "OK"
    assert a.append("Shared", None, None, MSG)[0] == "OK"
    assert b.select("Shared")[0] == "OK"
    assert a.delete("Shared")[0] == "OK"
    assert a.create("Shared")[0] == "OK"
    typ, data = a.select("Shared")
    assert typ == "OK" and data[0] == b"0"
    b.logout()
    a.logout()
