"""Crash safety: SIGKILL during a burst of deliveries loses nothing acked.

After every kill and restart: each acknowledged message is in each of its
recipients' mailboxes exactly once; nothing whose DATA was never finished is
visible; nothing shows twice; tmp/ is empty; the index and the Maildir agree.
PUSHMAIL_CRASH_ROUNDS sets the number of kill rounds (default 3).
"""
import os
import random
import re
import signal
import sqlite3
import threading
import time

from smtputil import RawSMTP

ROUNDS = int(os.environ.get("PUSHMAIL_CRASH_ROUNDS", "3"))
USERS = [f"u{i}@example.org" for i in range(5)]
SENDERS = 8


class Ledger:
    """What the clients sent (final dot written) and what was acked."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = set()
        self.acked = {}


def send_loop(port, ledger, stop, idx, rnd):
    try:
        c = RawSMTP(port, timeout=5)
        c.reply()
        c.cmd("EHLO crash")
        for n in range(2000):
            if stop.is_set():
                break
            token = f"r{rnd}s{idx}n{n}"
            rcpts = random.sample(USERS, random.choice((1, 1, 2, 3)))
            c.cmd("MAIL FROM:<load@remote.example>")
            for r in rcpts:
                c.cmd(f"RCPT TO:<{r}>")
            c.cmd("DATA")
            body = "x" * random.randint(100, 4000)
            c.send(f"Subject: crash {token}\r\n\r\n{body}\r\n.\r\n")
            with ledger.lock:
                ledger.attempted.add(token)
            code, _ = c.reply()
            if code == 250:
                with ledger.lock:
                    ledger.acked[token] = rcpts
    except (OSError, EOFError, ValueError):
        pass


def tokens_on_disk(d, user):
    found = {}
    root = d.user_dir(user)
    for sub in ("new", "cur"):
        for name in os.listdir(os.path.join(root, sub)):
            with open(os.path.join(root, sub, name), "rb") as f:
                m = re.search(rb"Subject: crash (\S+)", f.read(8192))
            assert m, name
            found.setdefault(m.group(1).decode(), []).append(name)
    return found


def check_index(d, user):
    root = d.user_dir(user)
    assert os.listdir(os.path.join(root, "tmp")) == []
    disk = set()
    for sub in ("new", "cur"):
        disk |= {n.split(":2,")[0] for n in os.listdir(os.path.join(root,
                                                                    sub))}
    db = sqlite3.connect(os.path.join(root, "pushmail.sqlite"))
    rows = db.execute("SELECT m.file, m.uid FROM message m JOIN mailbox b "
                      "ON b.id = m.mailbox_id WHERE b.name = 'INBOX'"
                      ).fetchall()
    db.close()
    assert {r[0] for r in rows} == disk
    uids = [r[1] for r in rows]
    assert len(uids) == len(set(uids))
    for name, uid in rows:
        assert f",U={uid}," in name


def test_sigkill_during_burst(daemon):
    for u in USERS:
        daemon.add_user(u)
    ledger = Ledger()
    for rnd in range(ROUNDS):
        daemon.start()
        stop = threading.Event()
        threads = [threading.Thread(target=send_loop,
                                    args=(daemon.ports["smtp"], ledger, stop,
                                          i, rnd))
                   for i in range(SENDERS)]
        for t in threads:
            t.start()
        time.sleep(random.uniform(0.3, 1.2))
        daemon.stop(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(10)
        assert ledger.acked, "no message was acknowledged before the kill"
    daemon.start()
    for user in USERS:
        found = tokens_on_disk(daemon, user)
        for token, names in found.items():
            assert len(names) == 1, (user, token, names)
            assert token in ledger.attempted, (user, token)
        for token, rcpts in ledger.acked.items():
            if user in rcpts:
                assert token in found, (user, token)
        check_index(daemon, user)
