"""Hibernating views: a mailbox watched only by sessions in IDLE drops its
message list after imap_idle_hibernate (1 s here) and keeps its UIDs as
runs. New mail and expunges still reach the idle sessions at once with the
right sequence numbers, a flag change wakes the view and is pushed too, a
SELECT of the sleeping mailbox wakes it, and DONE answers only once the
list is back so the next command sees the whole mailbox."""
import re
import smtplib
import time

import pytest

from conftest import Daemon
from test_imap_store import Imap, USER, PW, news

HIBERNATED = re.compile(r"event=idle action=hibernate")


@pytest.fixture
def imapd(tmp_path):
    d = Daemon(tmp_path, extra="imap_idle_hibernate = 1s\n"
                                "imap_idle_keepalive = 4m")
    d.add_user(USER, PW)
    d.start()
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


def send(d, n=1, start=0):
    s = smtplib.SMTP("127.0.0.1", d.ports["smtp"], timeout=10)
    for i in range(start, start + n):
        s.sendmail("a@remote.example", [USER],
                   (f"From: a@remote.example\r\nTo: {USER}\r\n"
                    f"Subject: m{i}\r\n\r\nbody {i}\r\n").encode())
    s.quit()


def until(c, pattern, timeout=5):
    """Reads lines until one matches pattern; returns every line read."""
    deadline = time.time() + timeout
    got = []
    while time.time() < deadline:
        if not c.pending(0.1):
            continue
        got.append(c.line())
        if re.search(pattern, got[-1]):
            return got
    raise AssertionError(f"no {pattern!r} in {got}")


def idle_asleep(d, c, mark):
    """Puts c into IDLE on INBOX and waits until the view hibernated."""
    c.send("i IDLE")
    assert c.line().startswith("+ ")
    d.wait_log(HIBERNATED.pattern, timeout=10, start=mark)


def test_news_and_expunges_while_asleep(imapd):
    send(imapd, 10)
    a, b = Imap(imapd.ports["imap"]), Imap(imapd.ports["imap"])
    a.ok("s", "SELECT INBOX")
    idle_asleep(imapd, a, len(imapd.log()))
    send(imapd, 2, start=10)
    got = until(a, r"^\* 12 EXISTS$")
    assert "* 11 EXISTS" in got or "* 12 EXISTS" in got
    # Another session selecting the sleeping mailbox wakes it.
    b.ok("s", "SELECT INBOX")
    b.ok("d", "UID STORE 3,7 +FLAGS.SILENT (\\Deleted)")
    got = until(a, r"^\* 7 FETCH")
    assert any(l.startswith("* 3 FETCH") for l in got), got
    b.ok("e", "EXPUNGE")
    got = until(a, r"^\* 6 EXPUNGE$")
    assert "* 3 EXPUNGE" in got
    a.send("DONE")
    assert until(a, r"^i ")[-1].startswith("i OK")
    lines = a.ok("f", "FETCH 1:* (UID)")
    uids = [int(re.search(r"UID (\d+)", l).group(1))
            for l in news(lines) if "FETCH" in l]
    assert uids == [1, 2, 4, 5, 6, 8, 9, 10, 11, 12]
    a.close()
    b.close()


def test_append_and_copy_into_a_sleeping_view(imapd):
    send(imapd, 6)
    a, b = Imap(imapd.ports["imap"]), Imap(imapd.ports["imap"])
    b.ok("s", "SELECT Archive")
    a.ok("s", "SELECT INBOX")
    idle_asleep(imapd, a, len(imapd.log()))
    msg = "From: b@x\r\nSubject: appended\r\n\r\nhi\r\n"
    b.send(f"ap APPEND INBOX (\\Flagged) {{{len(msg)}+}}")
    b.send(msg)
    assert until(b, r"^ap ")[-1].startswith("ap OK")
    until(a, r"^\* 7 EXISTS$")
    b.send(f"ap2 APPEND Archive {{{len(msg)}+}}")
    b.send(msg)
    assert until(b, r"^ap2 ")[-1].startswith("ap2 OK")
    b.ok("c", "COPY 1 INBOX")
    until(a, r"^\* 8 EXISTS$")
    a.send("DONE")
    assert until(a, r"^i ")[-1].startswith("i OK")
    lines = a.ok("f", "FETCH 7:8 (FLAGS)")
    assert "\\Flagged" in lines[0], lines
    a.close()
    b.close()


def test_done_on_a_sleeping_view_then_commands(imapd):
    send(imapd, 5)
    a = Imap(imapd.ports["imap"])
    a.ok("s", "SELECT INBOX")
    idle_asleep(imapd, a, len(imapd.log()))
    a.send("DONE")
    assert until(a, r"^i ")[-1].startswith("i OK")
    a.ok("st", "STORE 1:* +FLAGS (\\Seen)")
    lines = a.ok("se", "SEARCH SEEN")
    assert "* SEARCH 1 2 3 4 5" in lines
    # Sleep again, then a second session's SELECT of the sleeping view.
    idle_asleep(imapd, a, len(imapd.log()))
    b = Imap(imapd.ports["imap"])
    lines = b.ok("s", "SELECT INBOX")
    assert "* 5 EXISTS" in lines
    b.ok("f", "STORE 2 -FLAGS (\\Seen)")
    got = until(a, r"^\* 2 FETCH")
    assert "\\Seen" not in got[-1]
    a.send("DONE")
    assert until(a, r"^i ")[-1].startswith("i OK")
    a.close()
    b.close()


def test_keepalive_interval_is_configurable(tmp_path):
    d = Daemon(tmp_path, extra="imap_idle_keepalive = 2s")
    d.add_user(USER, PW)
    d.start()
    try:
        a = Imap(d.ports["imap"])
        a.ok("s", "SELECT INBOX")
        a.send("i IDLE")
        assert a.line().startswith("+ ")
        t0 = time.time()
        got = until(a, r"^\* OK Still here", timeout=8)
        # Half the period to rest, then up to half again; the keepalive
        # wheel ticks by the second.
        assert time.time() - t0 < 5, got
        a.send("DONE")
        assert until(a, r"^i ")[-1].startswith("i OK")
        a.close()
    finally:
        d.check_clean_exit(d.stop())
