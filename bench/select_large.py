#!/usr/bin/env python3
"""SELECT and UID FETCH 1:* (FLAGS) on a mailbox of 100,000 messages.

One user's INBOX holds --messages small messages: pushmaild gets them over
LMTP with 20 parallel sessions (bench/seed.py's template delivery);
Dovecot gets Maildir files written straight into new/ and indexes them on
a first SELECT that is not timed (pushmaild gets one untimed SELECT too).
Each run restarts the server, logs in and times SELECT INBOX (cold: the
first after the restart), UID FETCH 1:* (FLAGS), then SELECT again (warm)
and the FETCH again. Runs alternate the systems; medians of --runs (5)
and the ratio reference/pushmaild are printed. The client reads the FETCH
reply as raw bytes, so its parsing does not count.
"""

import argparse
import asyncio
import json
import os
import pwd
import shutil
import sys
import tempfile
import time

import benchlib
import idle_memory
import refstack
import seed

SYSTEMS = ("pushmaild", "reference")
STEPS = ("select_cold", "fetch_cold", "select_warm", "fetch_warm")
MESSAGE_SIZE = 4096
TIMEOUT = 600.0


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pushmaild", help="pushmaild binary (default: "
                   "$PUSHMAILD, else build/pushmaild)")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--quick", action="store_true",
                   help="10,000 messages, 3 runs")
    p.add_argument("--workdir", help="seeded data; kept and reused "
                   "(default: a temporary folder, removed afterwards)")
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.messages, args.runs = 10_000, 3
    args.systems = [s for s in args.systems.split(",") if s]
    if set(args.systems) - set(SYSTEMS):
        p.error("unknown system")
    if not 1 <= args.messages <= 1_000_000 or not 1 <= args.runs <= 100:
        p.error("messages 1..1,000,000, runs 1..100")
    return args


def write_maildir(home, user, count):
    """count messages as files in home/Maildir/new, owned by the mail
    user, named as a Maildir delivery would name them."""
    mail = pwd.getpwnam(refstack.MAIL_USER)
    new = os.path.join(home, "Maildir", "new")
    for sub in ("", "Maildir", "Maildir/new", "Maildir/cur",
                "Maildir/tmp"):
        path = os.path.join(home, sub)
        os.makedirs(path, exist_ok=True)
        os.chown(path, mail.pw_uid, mail.pw_gid)
    stamp = int(time.time())
    for i in range(count):
        data = benchlib.make_message(i, user, MESSAGE_SIZE)
        path = os.path.join(new, f"{stamp}.M{i}P{os.getpid()}.bench,"
                            f"S={len(data)}")
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, mail.pw_uid, mail.pw_gid)


async def timed_session(port, user, first_only=False):
    """LOGIN, then the timed steps; returns {step: seconds}."""
    client = await benchlib.ImapClient.connect(port, timeout=TIMEOUT)
    out = {}
    try:
        await client.login(user, benchlib.PASSWORD)
        for step in (STEPS[:1] if first_only else STEPS):
            t0 = time.monotonic()
            if step.startswith("select"):
                await client.command("SELECT INBOX", TIMEOUT)
            else:
                size = await client.command_bulk("UID FETCH 1:* (FLAGS)",
                                                  TIMEOUT)
                out[step + "_bytes"] = size
            out[step] = time.monotonic() - t0
        out["exists"] = client.exists
    finally:
        await client.logout()
    return out


def seed_systems(args, workdir, user):
    marker = os.path.join(workdir, "seeded-large.json")
    want = {"messages": args.messages, "systems": sorted(args.systems)}
    if os.path.exists(marker):
        with open(marker) as f:
            if json.load(f) == want:
                return
        sys.exit(f"{workdir} was seeded differently; give another "
                 "--workdir")
    if "pushmaild" in args.systems:
        pm = idle_memory.pushmaild_for(args, workdir, [user])
        t0 = time.monotonic()
        with pm:
            seed.deliver_template(pm.lmtp_port, user, args.messages)
        print(f"pushmaild: {args.messages} messages over LMTP in "
              f"{time.monotonic() - t0:.0f} s", flush=True)
    if "reference" in args.systems:
        dov = idle_memory.dovecot_for(workdir, [user], 10, False)
        t0 = time.monotonic()
        write_maildir(dov.home(user), user, args.messages)
        with dov:
            asyncio.run(timed_session(dov.imap_port, user, True))
        print(f"Dovecot: {args.messages} Maildir files written and "
              f"indexed in {time.monotonic() - t0:.0f} s", flush=True)
    if "pushmaild" in args.systems:
        with idle_memory.pushmaild_for(args, workdir, [user]) as pm:
            asyncio.run(timed_session(pm.imap_port, user, True))
    with open(marker, "w") as f:
        json.dump(want, f)


def one_run(args, system, workdir, user):
    if system == "pushmaild":
        srv = idle_memory.pushmaild_for(args, workdir, [user])
    else:
        srv = idle_memory.dovecot_for(workdir, [user], 10, False)
    with srv:
        return asyncio.run(timed_session(srv.imap_port, user))


def summary(results, systems):
    med = {}
    for system in systems:
        runs = [r for r in results if r["system"] == system]
        med[system] = {s: benchlib.median([r[s] for r in runs])
                       for s in STEPS}
        print(f"{system:<9} median of {len(runs)}: " + "  ".join(
            f"{s} {med[system][s] * 1000:.1f} ms" for s in STEPS))
    if len(med) == 2:
        print("ratio reference/pushmaild: " + "  ".join(
            f"{s} {med['reference'][s] / med['pushmaild'][s]:.2f}"
            for s in STEPS))
    return med


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    benchlib.stop_on_signals()
    args.binary = benchlib.find_pushmaild(args.pushmaild)
    if "pushmaild" in args.systems and not os.access(args.binary, os.X_OK):
        sys.exit(f"no pushmaild at {args.binary}")
    workdir = args.workdir or tempfile.mkdtemp(prefix="pushmail-large-")
    os.makedirs(workdir, exist_ok=True)
    os.chmod(workdir, 0o755)
    user = f"big@{benchlib.DOMAIN}"
    results = []
    try:
        seed_systems(args, workdir, user)
        for run in range(args.runs):
            order = args.systems if run % 2 == 0 else args.systems[::-1]
            for system in order:
                r = one_run(args, system, workdir, user)
                r.update({"system": system, "run": run + 1})
                results.append(r)
                print(f"run {run + 1} {system:<9} EXISTS {r['exists']}  " +
                      "  ".join(f"{s} {r[s] * 1000:.1f} ms" for s in STEPS) +
                      f"  (FETCH reply {r['fetch_warm_bytes']} bytes)",
                      flush=True)
        summary(results, args.systems)
    finally:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
