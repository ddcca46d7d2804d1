"""Sleeping connections: an IMAP session that has idled for
imap_idle_hibernate (1 s here) gives its bufferevent back and waits on a
bare read event, in plaintext and under TLS (the SSL object stays). Pushes,
keepalives and DONE make it again; afterwards it sleeps again, and the
session goes on as if nothing happened. A client that vanishes while its
session sleeps is noticed at once."""
import re
import socket
import ssl
import time

import pytest

from conftest import Daemon
from test_imap_hibernate import send, until
from test_imap_store import Imap, USER, PW

SLEEPING = r"event=idle action=rest asleep=1"


class TlsImap(Imap):
    """The scripted client over implicit TLS."""

    def __init__(self, port):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", port), 10)
        self.sock = ctx.wrap_socket(raw)
        self.buf = b""
        assert self.line().startswith("* OK ")
        self.cmd("l", f"LOGIN {USER} {PW}")

    def pending(self, wait=0.3):
        if self.buf or self.sock.pending():
            return True
        return super().pending(wait)


@pytest.fixture
def imapd(tmp_path):
    d = Daemon(tmp_path, extra="imap_idle_hibernate = 1s\n"
                                "imap_idle_keepalive = 4m")
    d.add_user(USER, PW)
    d.start()
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


def client(d, tls):
    return TlsImap(d.ports["imaps"]) if tls else Imap(d.ports["imap"])


def idle_sleeping(d, c):
    mark = len(d.log())
    c.send("i IDLE")
    assert c.line().startswith("+ ")
    d.wait_log(SLEEPING, timeout=10, start=mark)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_push_wakes_then_sleeps_again(imapd, tls):
    send(imapd, 3)
    a = client(imapd, tls)
    a.ok("s", "SELECT INBOX")
    idle_sleeping(imapd, a)
    for n in range(4, 8):
        send(imapd, 1, start=n)
        assert until(a, rf"^\* {n} EXISTS$")[-1] == f"* {n} EXISTS"
        # Give the connection time to drain and fall asleep again.
        time.sleep(0.3)
    a.send("DONE")
    assert until(a, r"^i ")[-1] == "i OK IDLE terminated"
    lines = a.ok("f", "UID FETCH 1:* (FLAGS)")
    assert len([l for l in lines if " FETCH " in l]) == 7
    # A second IDLE on the same connection sleeps and wakes the same way.
    idle_sleeping(imapd, a)
    send(imapd, 1, start=8)
    assert until(a, r"^\* 8 EXISTS$")
    a.send("DONE")
    assert until(a, r"^i ")[-1] == "i OK IDLE terminated"
    a.ok("n", "NOOP")
    a.ok("o", "LOGOUT")


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_done_pipelined_with_commands(imapd, tls):
    send(imapd, 2)
    a = client(imapd, tls)
    a.ok("s", "SELECT INBOX")
    idle_sleeping(imapd, a)
    a.sock.sendall(b"DONE\r\nn NOOP\r\nf FETCH 2 (UID)\r\n")
    got = until(a, r"^f ")
    assert "i OK IDLE terminated" in got, got
    assert any(g.startswith("n OK") for g in got), got
    assert got[-1].startswith("f OK")
    assert any(re.match(r"^\* 2 FETCH \(UID 2\)$", g) for g in got), got


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_vanished_client_noticed_while_asleep(imapd, tls):
    a = client(imapd, tls)
    a.ok("s", "SELECT INBOX")
    idle_sleeping(imapd, a)
    mark = len(imapd.log())
    a.sock.close()
    imapd.wait_log(r"proto=imap event=disconnect", timeout=5,
                   start=mark)
    # The daemon serves others afterwards.
    b = client(imapd, tls)
    b.ok("s", "SELECT INBOX")
    b.ok("o", "LOGOUT")


def test_keepalive_from_a_sleeping_connection(tmp_path):
    d = Daemon(tmp_path, extra="imap_idle_hibernate = 1s\n"
                               "imap_idle_keepalive = 4s")
    d.add_user(USER, PW)
    d.start()
    try:
        a = TlsImap(d.ports["imaps"])
        a.ok("s", "SELECT INBOX")
        idle_sleeping(d, a)
        until(a, r"^\* OK Still here", timeout=8)
        until(a, r"^\* OK Still here", timeout=8)
        a.send("DONE")
        assert until(a, r"^i ")[-1] == "i OK IDLE terminated"
        a.ok("o", "LOGOUT")
    finally:
        d.check_clean_exit(d.stop())
