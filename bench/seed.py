#!/usr/bin/env python3
"""Fills N users' INBOXes with M messages each, quickly, for pushmaild and
for Dovecot, so that benchmarks can start from full mailboxes.

How: the users file is written directly ({PLAIN} passwords, Dovecot's
passwd-file format, which pushmaild reads too). M messages (4 KiB each,
benchlib.make_message) go into one template user over LMTP, the same
protocol for both servers, through the server's own delivery path. The
server is then stopped (pushmaild) or the template opened once over IMAP
(Dovecot: it moves new/ to cur/ and brings its index up to date), and the
template is cloned for every other user: message files are hard-linked,
the small per-user files are copied (pushmaild: pushmail.sqlite and the
UIDVALIDITY file; Dovecot: dovecot-uidlist and its dovecot.index* files).

Every clone therefore has the same UIDVALIDITY, UIDs, Message-IDs and a
Delivered-To naming the template user; that is fine for a benchmark and
nothing else. Disk use: the message files once (M x 4 KiB), one directory
entry per message per user (about 64 bytes each), and per user one copy of
the index (pushmaild's SQLite index holds the cached envelope and body
structure: about 1 KiB per message, measured; Dovecot's index files are
smaller). estimate() prints the figure before anything is written.

Loopback only; every wait is bounded. Used as a module by push_latency.py
(seed_pushmaild, seed_dovecot) or as a command line tool.
"""

import argparse
import asyncio
import contextlib
import imaplib
import os
import pwd
import shutil
import sqlite3
import sys
import tempfile
import time

import benchlib
import refstack

DELIVER_SESSIONS = 20
PM_INDEX_BYTES_PER_MSG = 1050  # pushmail.sqlite, measured with 4 KiB mail
DOVECOT_INDEX_BYTES_PER_MSG = 200
DIRENT_BYTES = 64
MESSAGE_BYTES = 4096
MAX_USERS = 100_000
MAX_MESSAGES = 100_000


class SeedError(Exception):
    """Seeding failed: a refused delivery or a clone that does not open."""


def estimate(users, messages):
    """Bytes of disk one system's seeded data takes, roughly."""
    files = messages * MESSAGE_BYTES
    dirents = users * messages * DIRENT_BYTES
    return {
        "pushmaild": files + dirents + users * messages *
        PM_INDEX_BYTES_PER_MSG,
        "dovecot": files + dirents + users * messages *
        DOVECOT_INDEX_BYTES_PER_MSG,
    }


def deliver_template(lmtp_port, rcpt, messages, sessions=DELIVER_SESSIONS):
    """Delivers messages 4 KiB messages to rcpt over LMTP; raises SeedError
    unless every one got its 250. Returns the seconds it took."""
    if messages == 0:
        return 0.0
    res = asyncio.run(benchlib.run_load(lmtp_port, True, messages,
                                        min(sessions, messages), [rcpt]))
    if res["errors"] or res["accepted"] != messages:
        raise SeedError(f"template delivery: {res['accepted']} of "
                        f"{messages} accepted; {res['errors'][:3]}")
    return res["elapsed"]


def clone_tree(src, dst, link_dirs=("cur", "new"), skip_dirs=("tmp",),
               skip_files=(), owner=None):
    """Recreates src at dst: files in a folder named in link_dirs are
    hard-linked, folders in skip_dirs are made empty, other files copied.
    owner (uid, gid) is applied to what is created (links keep theirs).
    Returns the number of links made."""
    links = 0
    for root, dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        target = os.path.normpath(os.path.join(dst, rel))
        os.makedirs(target, exist_ok=True)
        shutil.copymode(root, target)
        if owner:
            os.chown(target, *owner)
        base = os.path.basename(root)
        if base in skip_dirs:
            dirs[:] = []
            continue
        for name in files:
            s, d = os.path.join(root, name), os.path.join(target, name)
            if base in link_dirs:
                os.link(s, d)
                links += 1
            elif name not in skip_files:
                shutil.copy2(s, d)
                if owner:
                    os.chown(d, *owner)
    return links


def clone_all(template_dir, dirs, **kw):
    """Clones template_dir into every folder of dirs; prints progress."""
    t0 = time.monotonic()
    total = 0
    for i, d in enumerate(dirs):
        total += clone_tree(template_dir, d, **kw)
        if (i + 1) % 1000 == 0:
            print(f"    cloned {i + 1}/{len(dirs)} "
                  f"({time.monotonic() - t0:.0f} s)", flush=True)
    return total, time.monotonic() - t0


def pm_user_dir(pm, address):
    """A pushmaild user's directory: DATA/mail/<user>."""
    return os.path.join(pm.data, "mail", address)


def pm_check_clone(pm, address, messages):
    """Opens a clone's index read-only and checks its INBOX row count and
    that one of its files is where the row says."""
    udir = pm_user_dir(pm, address)
    db = os.path.join(udir, "pushmail.sqlite")
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro",
                                            uri=True)) as c:
        n, = c.execute("SELECT messages FROM mailbox WHERE name = 'INBOX'"
                       ).fetchone()
        row = c.execute("SELECT file, in_cur FROM message LIMIT 1"
                        ).fetchone()
    if n != messages:
        raise SeedError(f"{address}: INBOX holds {n}, wanted {messages}")
    if row and not row[1] and not os.path.exists(
            os.path.join(udir, "new", row[0])):
        raise SeedError(f"{address}: {row[0]} missing from new/")


def seed_pushmaild(pm, messages, log=print):
    """Seeds a benchlib.Pushmaild (not started; its users file lists every
    address, the first one is the template) with messages per INBOX.
    Starts it, delivers over LMTP, stops it, clones. The caller starts
    it again to measure. Returns a dict of what was done."""
    template, others = pm.addresses[0], pm.addresses[1:]
    pm.start()
    try:
        took = deliver_template(pm.lmtp_port, template, messages)
    finally:
        pm.stop()
    log(f"  pushmaild: {messages} messages into {template} over LMTP in "
        f"{took:.1f} s")
    tdir = pm_user_dir(pm, template)
    links, secs = clone_all(tdir, [pm_user_dir(pm, a) for a in others])
    for a in (others[:1] + others[-1:]):
        pm_check_clone(pm, a, messages)
    log(f"  pushmaild: cloned to {len(others)} users ({links} links) in "
        f"{secs:.1f} s; {disk_usage(os.path.join(pm.data, 'mail'))}")
    return {"deliver_s": took, "clone_s": secs, "links": links}


def dovecot_warm(dov, user, password):
    """Logs in over IMAP and SELECTs INBOX, so Dovecot moves new/ to cur/
    and writes its index. Returns the EXISTS count."""
    imap = imaplib.IMAP4("127.0.0.1", dov.imap_port, timeout=300)
    try:
        imap.login(user, password)
        typ, data = imap.select("INBOX")
        if typ != "OK":
            raise SeedError(f"Dovecot SELECT for {user}: {data}")
        return int(data[0])
    finally:
        with contextlib.suppress(Exception):
            imap.logout()


def seed_dovecot(dov, password, messages, log=print):
    """Seeds a started refstack.Dovecot (users given at construction, the
    first is the template) with messages per INBOX, then clones the
    template's Maildir (message files linked, uidlist and index copied,
    owned by the mail user). Returns a dict of what was done."""
    users = list(dov.users)
    template, others = users[0], users[1:]
    took = deliver_template(dov.lmtp_port, template, messages)
    exists = dovecot_warm(dov, template, password)
    if exists != messages:
        raise SeedError(f"Dovecot template shows {exists} messages")
    log(f"  Dovecot: {messages} messages into {template} over LMTP in "
        f"{took:.1f} s")
    mail = pwd.getpwnam(refstack.MAIL_USER)
    owner = (mail.pw_uid, mail.pw_gid)
    tdir = os.path.join(dov.home(template), "Maildir")
    targets = [os.path.join(dov.home(u), "Maildir") for u in others]
    for u in others:
        os.makedirs(dov.home(u), exist_ok=True)
        os.chown(dov.home(u), *owner)
    links, secs = clone_all(tdir, targets, owner=owner)
    if others:
        got = dovecot_warm(dov, others[-1], password)
        if got != messages:
            raise SeedError(f"Dovecot clone {others[-1]} shows {got}")
    log(f"  Dovecot: cloned to {len(others)} users ({links} links) in "
        f"{secs:.1f} s; {disk_usage(os.path.join(dov.dir, 'home'))}")
    return {"deliver_s": took, "clone_s": secs, "links": links}


def disk_usage(path):
    """Allocated bytes under path, each hard-linked file counted once."""
    seen, total = set(), 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(root, name))
                if st.st_ino not in seen:
                    seen.add(st.st_ino)
                    total += st.st_blocks * 512
        with contextlib.suppress(OSError):
            total += os.lstat(root).st_blocks * 512
    return f"disk used {total / 2**20:.0f} MiB"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pushmaild", help="pushmaild binary (default: "
                   "$PUSHMAILD, else build/pushmaild)")
    p.add_argument("--systems", default="pushmaild,dovecot")
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--messages", type=int, default=1000,
                   help="messages per INBOX")
    p.add_argument("--dir", help="work folder (default: a new temporary "
                   "one); kept afterwards")
    p.add_argument("--yes", action="store_true",
                   help="seed even when the estimate exceeds free disk/2")
    args = p.parse_args(argv)
    if not 1 <= args.users <= MAX_USERS or \
            not 0 <= args.messages <= MAX_MESSAGES:
        p.error(f"users 1..{MAX_USERS}, messages 0..{MAX_MESSAGES}")
    args.systems = [s for s in args.systems.split(",") if s]
    if set(args.systems) - {"pushmaild", "dovecot"}:
        p.error("systems: pushmaild, dovecot")
    return args


def check_space(path, users, messages, systems, force):
    """Prints the estimate; refuses more than half the free space."""
    est = estimate(users, messages)
    need = sum(est[s] for s in systems)
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    print(f"seeding {users} users x {messages} messages "
          f"({', '.join(systems)}): about {need / 2**30:.2f} GiB of "
          f"{free / 2**30:.0f} GiB free")
    if need > free / 2 and not force:
        sys.exit("refusing: more than half the free space; use --yes or "
                 "fewer --messages")


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    benchlib.stop_on_signals()
    workdir = args.dir or tempfile.mkdtemp(prefix="pushmail-seed-")
    os.makedirs(workdir, exist_ok=True)
    os.chmod(workdir, 0o755)
    check_space(workdir, args.users, args.messages, args.systems, args.yes)
    addresses = benchlib.users(args.users)
    if "pushmaild" in args.systems:
        pm = benchlib.Pushmaild(benchlib.find_pushmaild(args.pushmaild),
                                workdir, addresses)
        seed_pushmaild(pm, args.messages)
        print(f"pushmaild data: {pm.data} (config {pm.conf})")
    if "dovecot" in args.systems:
        dov = refstack.Dovecot(workdir, addresses, benchlib.PASSWORD,
                               max_sessions=100)
        with dov:
            seed_dovecot(dov, benchlib.PASSWORD, args.messages)
        print(f"Dovecot homes: {dov.dir}/home")
    print(f"work folder kept: {workdir}")


if __name__ == "__main__":
    main()
