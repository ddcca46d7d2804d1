"""A real Postfix from Debian relays mail into pushmaild over LMTP."""
import shutil
import smtplib
import tempfile
import time

import pytest

from refstack import Postfix
from smtputil import message

pytestmark = pytest.mark.skipif(shutil.which("postfix") is None and
                                not shutil.os.path.exists("/usr/sbin/postfix"),
                                reason="needs Postfix")


@pytest.mark.parametrize("transport", ["lmtp", "smtp"])
def test_postfix_relays(daemon, transport):
    daemon.add_user("alice@example.org")
    daemon.add_user("bob@example.org")
    daemon.start()
    # Postfix's daemons run as another user, so pytest's private
    # tmp_path (mode 0700) is out of their reach.
    pf_dir = tempfile.mkdtemp(prefix="pm-postfix-")
    try:
        relay(daemon, pf_dir, transport)
    finally:
        shutil.rmtree(pf_dir, ignore_errors=True)


def relay(daemon, pf_dir, transport="lmtp"):
    extra = {}
    if transport == "smtp":
        # Postfix's SMTP client uses BDAT when the server offers CHUNKING.
        extra["virtual_transport"] = \
            f"smtp:[127.0.0.1]:{daemon.ports['smtp']}"
        extra["smtp_tls_security_level"] = "may"
    with Postfix(pf_dir, lmtp_addr=("127.0.0.1", daemon.ports["lmtp"]),
                 domains=["example.org"], extra_main=extra) as pf:
        port = pf.smtp_port
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.sendmail("far@remote.example",
                       ["alice@example.org", "bob@example.org"],
                       message(subject="via postfix"))
            s.sendmail("far@remote.example", ["alice@example.org"],
                       message(subject="second"))
        assert pf.wait_queue_empty(60), "Postfix kept the mail queued"
    deadline = time.time() + 10
    while time.time() < deadline:
        if (len(daemon.messages("alice@example.org")) == 2 and
                len(daemon.messages("bob@example.org")) == 1):
            break
        time.sleep(0.1)
    alice = daemon.messages("alice@example.org")
    assert len(alice) == 2
    assert len(daemon.messages("bob@example.org")) == 1
    data = b"".join(open(f, "rb").read() for f in alice)
    assert b"Subject: via postfix" in data and b"Subject: second" in data
    assert (b"with LMTP" if transport == "lmtp" else b"with ESMTPS") in data
    assert b"Return-Path: <far@remote.example>" in data
