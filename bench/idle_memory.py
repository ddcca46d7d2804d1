#!/usr/bin/env python3
"""Server memory per idle IMAP session, pushmaild against Dovecot.

N sessions, each of a different user whose INBOX holds --messages
messages, log in, SELECT INBOX and IDLE (plaintext, or TLS from the first
byte). The server's PSS (pushmaild: its one process; Dovecot: the sum over
the master and every descendant) is read from /proc/PID/smaps_rollup on a
freshly started server before the clients connect and again once they all
idle; (after - before) / N is the cost of one idle session. Targets for
pushmaild: under 2 KiB plaintext, under 20 KiB with TLS.

Mailboxes are seeded by bench/seed.py (one template user filled over LMTP,
cloned with hard links) into --workdir, which can be kept and reused.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import benchlib
import refstack
import seed

SYSTEMS = ("pushmaild", "reference")
MODES = ("plain", "tls")
TARGET_KIB = {"plain": 2.0, "tls": 20.0}
SESSIONS_PER_CLIENT_PROCESS = 4000


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pushmaild", help="pushmaild binary (default: "
                   "$PUSHMAILD, else build/pushmaild)")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--counts", default="10000,15000",
                   help="session counts, comma separated")
    p.add_argument("--quick", action="store_true",
                   help="1,000 sessions only")
    p.add_argument("--messages", type=int, default=1000,
                   help="messages in each INBOX")
    p.add_argument("--concurrency", type=int, default=100,
                   help="logins in flight per client process while "
                   "the sessions are opened")
    p.add_argument("--settle", type=float, default=5.0,
                   help="seconds to wait before the first PSS reading")
    p.add_argument("--idle-settle", type=float, default=90.0,
                   help="seconds the sessions idle before the second "
                   "reading: long enough for what a server does to idle "
                   "sessions after a while (pushmaild hibernates views "
                   "after 30 s of IDLE, closes index handles unused for "
                   "30 s, and gives freed memory back once its I/O "
                   "threads have ended after 10 s without work)")
    p.add_argument("--workdir", help="seeded data; kept, and reused when "
                   "it already holds enough users (default: a new "
                   "temporary folder, removed afterwards)")
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.counts = "1000"
    args.counts = [int(c) for c in args.counts.split(",") if c]
    args.systems = [s for s in args.systems.split(",") if s]
    args.modes = [m for m in args.modes.split(",") if m]
    if set(args.systems) - set(SYSTEMS) or set(args.modes) - set(MODES):
        p.error("unknown system or mode")
    if not args.counts or max(args.counts) > 19000 or min(args.counts) < 1:
        p.error("counts must be 1..19000")
    return args


def make_cert(workdir):
    """One ECDSA P-256 self-signed pair for both servers (readable by
    Dovecot's processes). Returns (cert, key)."""
    cert = os.path.join(workdir, "cert.pem")
    key = os.path.join(workdir, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "30",
                        "-subj", f"/CN={benchlib.DOMAIN}"],
                       check=True, capture_output=True, timeout=60)
        os.chmod(cert, 0o644)
        os.chmod(key, 0o644)
    return cert, key


def pushmaild_for(args, workdir, users):
    cert, key = make_cert(workdir)
    return benchlib.PushmaildImap(args.binary, workdir, users, cert, key)


def dovecot_for(workdir, users, sessions, tls):
    """Dovecot sized for sessions; with TLS, the high-performance login
    mode (REFERENCE-STACK.md)."""
    cert, key = make_cert(workdir)
    return refstack.Dovecot(workdir, users, benchlib.PASSWORD,
                            max_sessions=sessions + 100,
                            hostname=benchlib.DOMAIN, ssl_cert=cert,
                            ssl_key=key,
                            login_processes=4 if tls else 0)


def seed_systems(args, workdir, users):
    """Seeds each system's mailboxes once; a marker file records what a
    kept workdir holds."""
    for system in args.systems:
        marker = os.path.join(workdir, f"seeded-{system}.json")
        want = {"users": len(users), "messages": args.messages}
        if os.path.exists(marker):
            with open(marker) as f:
                have = json.load(f)
            # The users are user1..userN: a bigger seed holds a smaller.
            if have.get("messages") == want["messages"] and \
                    have.get("users", 0) >= want["users"]:
                continue
            sys.exit(f"{workdir} was seeded differently ({marker}); "
                     "give another --workdir")
        print(f"seeding {system}: {len(users)} users x {args.messages} "
              "messages", flush=True)
        if system == "pushmaild":
            seed.seed_pushmaild(pushmaild_for(args, workdir, users),
                                args.messages)
        else:
            with dovecot_for(workdir, users, 100, False) as dov:
                seed.seed_dovecot(dov, benchlib.PASSWORD, args.messages)
        with open(marker, "w") as f:
            json.dump(want, f)


class Server:
    """A started server of either system: port for the mode, pid of the
    process tree's root."""

    def __init__(self, args, system, workdir, users, sessions, mode):
        self.system = system
        self.mode = mode
        if system == "pushmaild":
            self.srv = pushmaild_for(args, workdir, users)
        else:
            self.srv = dovecot_for(workdir, users, sessions, mode == "tls")
        self.inotify = None
        if system == "reference":
            self.inotify = refstack.raised_inotify_instances(sessions + 1000)

    def __enter__(self):
        if self.inotify is not None:
            self.inotify.__enter__()
        try:
            self.srv.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        self.srv.stop()
        if self.inotify is not None:
            self.inotify.__exit__(None, None, None)

    @property
    def port(self):
        if self.mode == "tls":
            return self.srv.imaps_port
        return self.srv.imap_port

    @property
    def lmtp_port(self):
        return self.srv.lmtp_port

    def pid(self):
        return self.srv.proc.pid

    def pids(self):
        return benchlib.process_tree(self.pid())

    def note(self):
        """The pushmaild open files ceiling, from its log."""
        if self.system != "pushmaild":
            return ""
        with open(self.srv.log, errors="replace") as f:
            for _, line in zip(range(200), f):
                if "event=limits" in line:
                    return line.split("event=limits", 1)[1].strip()
        return "no event=limits line"

    def open_files(self):
        """Descriptors the root process holds."""
        try:
            return len(os.listdir(f"/proc/{self.pid()}/fd"))
        except OSError:
            return None


def client_processes(n):
    return max(2, math.ceil(n / SESSIONS_PER_CLIENT_PROCESS))


def measure(args, system, mode, n, workdir, users):
    """One fresh server, n idle sessions; returns the figures."""
    with Server(args, system, workdir, users, n, mode) as srv:
        time.sleep(args.settle)
        before = benchlib.pss_kib(srv.pids())
        fleet = benchlib.Fleet(srv.port, users[:n], benchlib.PASSWORD,
                               mode == "tls", client_processes(n))
        try:
            t0 = time.monotonic()
            res = fleet.open(args.concurrency)
            opened = time.monotonic() - t0
            time.sleep(args.idle_settle)
            pids = srv.pids()
            after = benchlib.pss_kib(pids)
            fds = srv.open_files()
        finally:
            fleet.close()
        note = srv.note()
    idle = res["open"]
    return {"system": system, "mode": mode, "n": n, "idle": idle,
            "errors": len(res["errors"]), "first_errors": res["errors"][:3],
            "open_s": opened, "processes": len(pids),
            "pss_before_kib": before, "pss_after_kib": after,
            "per_session_kib": (after - before) / idle if idle else None,
            "root_fds": fds, "note": note}


def report(m):
    per = m["per_session_kib"]
    line = (f"{m['system']:<9} {m['mode']:<5} N={m['n']:>6}  idle "
            f"{m['idle']:>6}  PSS {m['pss_before_kib'] / 1024:8.1f} -> "
            f"{m['pss_after_kib'] / 1024:8.1f} MiB  per session "
            f"{per if per is not None else float('nan'):8.2f} KiB  "
            f"({m['processes']} processes, opened in {m['open_s']:.1f} s)")
    if m["system"] == "pushmaild" and per is not None:
        target = TARGET_KIB[m["mode"]]
        line += f"  target < {target:g} KiB: " + \
            ("PASS" if per < target else "FAIL")
    print(line, flush=True)
    if m["errors"]:
        print(f"    {m['errors']} sessions failed: {m['first_errors']}")
    if m["note"]:
        print(f"    pushmaild {m['note']}; it held {m['root_fds']} "
              "descriptors with the sessions idle")


def ratios(results):
    for mode in {m["mode"] for m in results}:
        for n in sorted({m["n"] for m in results}):
            got = {m["system"]: m["per_session_kib"] for m in results
                   if m["mode"] == mode and m["n"] == n}
            if got.get("pushmaild") and got.get("reference"):
                print(f"ratio reference/pushmaild {mode} N={n}: "
                      f"{got['reference'] / got['pushmaild']:.1f}x")


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    benchlib.stop_on_signals()
    benchlib.raise_nofile()
    args.binary = benchlib.find_pushmaild(args.pushmaild)
    if "pushmaild" in args.systems and not os.access(args.binary, os.X_OK):
        sys.exit(f"no pushmaild at {args.binary}")
    workdir = args.workdir or tempfile.mkdtemp(prefix="pushmail-idle-")
    os.makedirs(workdir, exist_ok=True)
    os.chmod(workdir, 0o755)
    users = benchlib.users(max(args.counts))
    results = []
    try:
        seed_systems(args, workdir, users)
        for mode in args.modes:
            for i, n in enumerate(args.counts):
                order = args.systems if i % 2 == 0 else args.systems[::-1]
                for system in order:
                    m = measure(args, system, mode, n, workdir, users)
                    report(m)
                    results.append(m)
        ratios(results)
    finally:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
