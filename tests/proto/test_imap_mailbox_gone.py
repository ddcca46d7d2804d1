"""A selected mailbox deleted or renamed by another session: that session
gets * BYE at once (in IDLE or at rest) instead of working on a mailbox
that no longer exists; the session that deleted or renamed its own
selected mailbox simply leaves it ([CLOSED] under IMAP4rev2)."""
import pytest

from conftest import Daemon
from test_imap_store import Imap, USER, PW
from test_imap_hibernate import until


@pytest.fixture
def imapd(tmp_path):
    d = Daemon(tmp_path)
    d.add_user(USER, PW)
    d.start()
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


@pytest.mark.parametrize("verb", ["DELETE Work", "RENAME Work Play",
                                  "RENAME Work Other/Work"])
def test_other_session_is_closed(imapd, verb):
    a, b = Imap(imapd.ports["imap"]), Imap(imapd.ports["imap"])
    b.ok("c", "CREATE Work")
    a.ok("s", "SELECT Work")
    a.send("i IDLE")
    assert a.line().startswith("+ ")
    b.ok("d", verb)
    got = until(a, r"^\* BYE ")
    assert "deleted or renamed" in got[-1]
    # The other session and new ones carry on.
    lines = b.ok("l", 'LIST "" "*"')
    assert not any('"Work"' in l for l in lines), lines
    c = Imap(imapd.ports["imap"])
    c.ok("s", "SELECT INBOX")
    for x in (a, b, c):
        x.close()


def test_not_idle_session_is_closed_too(imapd):
    a, b = Imap(imapd.ports["imap"]), Imap(imapd.ports["imap"])
    b.ok("c", "CREATE Work")
    a.ok("s", "EXAMINE Work")
    b.ok("d", "DELETE Work")
    until(a, r"^\* BYE ")
    a.close()
    b.close()


def test_own_delete_leaves_the_mailbox(imapd):
    a = Imap(imapd.ports["imap"])
    a.ok("c", "CREATE Work")
    a.ok("s", "SELECT Work")
    lines = a.ok("d", "DELETE Work")
    assert not any("BYE" in l for l in lines)
    _, tagged = a.cmd("f", "FETCH 1 FLAGS")
    assert tagged.startswith("f BAD"), tagged
    a.ok("s2", "SELECT INBOX")
    a.close()


def test_own_rename_under_rev2_says_closed(imapd):
    a = Imap(imapd.ports["imap"])
    a.ok("e", "ENABLE IMAP4rev2")
    a.ok("c", "CREATE Work")
    a.ok("s", "SELECT Work")
    lines = a.ok("r", "RENAME Work Play")
    assert any("[CLOSED]" in l for l in lines), lines
    a.ok("n", "NOOP")
    a.close()
