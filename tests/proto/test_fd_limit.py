"""Out of descriptors, the daemon pauses accepting instead of spinning, and
serves again once connections close."""
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
    errors = daemon.log().count("event=accept error=")
    assert 0 < errors < 40, errors
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
