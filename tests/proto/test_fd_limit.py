"""Near the descriptor limit the daemon pauses accepting (at its connection
ceiling, which keeps the store's share of descriptors free, or at EMFILE)
instead of spinning, keeps serving the sessions it has, including SELECTs
that need an index handle, and accepts again once connections close."""
import shutil
import smtplib
import socket
import time

import pytest

from smtputil import message


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit")
def test_descriptor_exhaustion(daemon):
    daemon.add_user("alice@example.org")
    daemon.start(wrapper=("prlimit", "--nofile=64:64"))
    port = daemon.ports["smtp"]
    socks = []
    for _ in range(120):
        s = socket.create_connection(("127.0.0.1", port), 5)
        socks.append(s)
    time.sleep(1.0)
    log = daemon.log()
    errors = log.count("event=accept error=")
    assert "event=accept action=pause" in log or errors > 0
    assert errors < 40, errors
    for s in socks:
        s.close()
    deadline = time.time() + 10
    while True:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as c:
                c.sendmail("x@r.example", ["alice@example.org"], message())
            break
        except (smtplib.SMTPException, OSError):
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    assert len(daemon.messages("alice@example.org")) == 1


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit")
def test_ceiling_keeps_descriptors_for_the_store(daemon):
    import imaplib
    users = [f"u{i}@example.org" for i in range(12)]
    for u in users:
        daemon.add_user(u, "pw")
    daemon.start(wrapper=("prlimit", "--nofile=400:400"))
    m = __import__("re").search(r"event=limits connections=(\d+)",
                                daemon.log())
    assert m, daemon.log()
    ceiling = int(m.group(1))
    assert 0 < ceiling < 400
    port = daemon.ports["imap"]
    # Fill the ceiling with bare connections, then some more that wait.
    socks = [socket.create_connection(("127.0.0.1", port), 5)
             for _ in range(ceiling + 20)]
    time.sleep(0.5)
    daemon.wait_log("event=accept action=pause", timeout=5)
    assert "event=accept error=" not in daemon.log()
    # Free places (accepting resumes 64 below the ceiling); logins and
    # SELECTs of many users still open their index handles.
    for s in socks[:100]:
        s.close()
    sessions = []
    for u in users:
        c = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        c.login(u, "pw")
        typ, _ = c.select("INBOX")
        assert typ == "OK"
        sessions.append(c)
    for c in sessions:
        c.logout()
    for s in socks[100:]:
        s.close()
    assert "unable to open database file" not in daemon.log()
