"""Failed logins are slowed down per client address, before any hashing,
and a client at another address is not slowed by them."""
import smtplib
import time

import pytest

from smtputil import insecure_context


def attempt(port, password, source="127.0.0.1"):
    s = smtplib.SMTP_SSL("127.0.0.1", port, context=insecure_context(),
                         timeout=30, source_address=(source, 0))
    s.ehlo("c")
    start = time.monotonic()
    try:
        # One AUTH PLAIN: smtplib.login would retry with LOGIN.
        s.auth("PLAIN", lambda challenge=None:
               f"\0alice@example.org\0{password}")
        ok = True
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 535
        ok = False
    elapsed = time.monotonic() - start
    s.close()
    return ok, elapsed


def test_failures_are_delayed_per_address(daemon):
    daemon.add_user("alice@example.org", "right-pw")
    daemon.start()
    port = daemon.ports["submissions"]
    times = [attempt(port, f"bad{i}")[1] for i in range(5)]
    assert max(times[:3]) < 0.9, times
    assert times[3] >= 0.9 and times[4] >= 1.8, times
    # Another address is not held back by this one's failures.
    ok, elapsed = attempt(port, "right-pw", source="127.0.0.2")
    assert ok and elapsed < 0.9, elapsed
