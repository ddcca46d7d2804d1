#!/usr/bin/env python3
"""A reconnect storm: N idle IMAP sessions dropped and back all at once.

N sessions (each its own user, INBOX seeded by bench/seed.py) log in,
SELECT INBOX and IDLE. Then every one is dropped at once (RST, as a client
sees a network blip) and all reconnect at once: LOGIN, SELECT INBOX, IDLE.
Measured: the time until the last is back in IDLE (pushmaild target:
10,000 within 10 s), the server CPU time (utime + stime from /proc, every
Dovecot process summed, the ones that ended during the storm through the
master's reaped-children time) per reconnect, plaintext and TLS with
session resumption (target: under 0.1 ms per login). Meanwhile a watcher
process holds --watchers more idle sessions and delivers one message to
one of them every --interval seconds over LMTP, timing from the final
'.' of DATA to '* n EXISTS'; push latency during the storm is compared
with the latency before it (target: within 2x). A second storm then
drops the sessions again and brings them back with LOGIN alone, which
gives the server CPU per login itself (the target's measure) apart from
the SELECT of a mailbox whose index the first storm's handles no longer
hold open.
"""

import argparse
import asyncio
import collections
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time

import benchlib
import idle_memory

SYSTEMS = ("pushmaild", "reference")
MODES = ("plain", "tls")
WATCH_MAX_SECONDS = 1800
WATCH_MAX_SAMPLES = 100_000
TARGET_STORM_S = 10.0
TARGET_CPU_MS = 0.1


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pushmaild", help="pushmaild binary (default: "
                   "$PUSHMAILD, else build/pushmaild)")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--sessions", type=int, default=10000)
    p.add_argument("--watchers", type=int, default=200)
    p.add_argument("--quick", action="store_true",
                   help="1,000 sessions, 50 watchers")
    p.add_argument("--messages", type=int, default=1000,
                   help="messages in each INBOX")
    p.add_argument("--interval", type=float, default=0.1,
                   help="seconds between deliveries to the watchers")
    p.add_argument("--quiet", type=float, default=10.0,
                   help="seconds of push latency measured before the "
                   "storm")
    p.add_argument("--storm-timeout", type=float, default=300.0)
    p.add_argument("--concurrency", type=int, default=100,
                   help="logins in flight per client process while the "
                   "sessions are first opened (the storm has no limit)")
    p.add_argument("--workdir", help="seeded data; kept and reused "
                   "(default: a temporary folder, removed afterwards)")
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.sessions, args.watchers = 1000, 50
    args.systems = [s for s in args.systems.split(",") if s]
    args.modes = [m for m in args.modes.split(",") if m]
    if set(args.systems) - set(SYSTEMS) or set(args.modes) - set(MODES):
        p.error("unknown system or mode")
    if not 1 <= args.sessions <= 19000 or not 1 <= args.watchers <= 2000:
        p.error("sessions 1..19000, watchers 1..2000")
    return args


class Watcher:
    """The watchers' side, run in a process of its own."""

    def __init__(self, imap_port, lmtp_port, users, interval):
        self.imap_port = imap_port
        self.lmtp_port = lmtp_port
        self.users = users
        self.interval = interval
        self.pending = collections.defaultdict(collections.deque)
        self.samples = []
        self.errors = []

    async def _listen(self, user, client):
        for _ in range(WATCH_MAX_SAMPLES):
            try:
                await client.wait_exists(WATCH_MAX_SECONDS)
            except (benchlib.ImapError, OSError, asyncio.TimeoutError) as e:
                self.errors.append(f"{user}: {e!r}")
                return
            now = time.monotonic()
            if self.pending[user]:
                t0 = self.pending[user].popleft()
                self.samples.append((t0, now - t0))

    async def _deliver(self, lmtp, user, seq):
        data = benchlib.make_message(seq, user, 2048)
        await lmtp.command("MAIL FROM:<watch@client.example>", 250)
        await lmtp.command(f"RCPT TO:<{user}>", 250)
        await lmtp.command("DATA", 354)
        self.pending[user].append(time.monotonic())
        lmtp.writer.write(data + b".\r\n")
        await lmtp.writer.drain()
        await lmtp.expect(250)

    async def _ticker(self, stop):
        pool = asyncio.Queue()
        for _ in range(4):
            pool.put_nowait(await benchlib.SmtpClient.connect(
                self.lmtp_port, lmtp=True))
        tasks = set()
        deadline = time.monotonic() + WATCH_MAX_SECONDS
        for seq in range(WATCH_MAX_SAMPLES):
            if stop.is_set() or time.monotonic() > deadline:
                break
            user = self.users[seq % len(self.users)]
            t = asyncio.create_task(self._one(pool, user, seq))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            await asyncio.sleep(self.interval)
        await asyncio.wait_for(asyncio.gather(*tasks), 60)

    async def _one(self, pool, user, seq):
        lmtp = await pool.get()
        try:
            await self._deliver(lmtp, user, seq)
        except (benchlib.SmtpError, OSError, asyncio.TimeoutError) as e:
            self.errors.append(f"deliver {user}: {e!r}")
        pool.put_nowait(lmtp)

    async def run(self, ready, stop):
        sem = asyncio.Semaphore(50)

        async def open_one(user):
            async with sem:
                return await benchlib.imap_session_to_idle(
                    self.imap_port, user, benchlib.PASSWORD)
        clients = await asyncio.gather(*(open_one(u) for u in self.users))
        listeners = [asyncio.create_task(self._listen(u, c))
                     for u, c in zip(self.users, clients)]
        ready.set()
        await self._ticker(stop)
        await asyncio.sleep(2)  # the last pushes (Dovecot waits 0.5 s)
        for t in listeners:
            t.cancel()
        for c in clients:
            c.abort()


def watch_main(imap_port, lmtp_port, users, interval, ready, stop, out):
    benchlib.raise_nofile()
    w = Watcher(imap_port, lmtp_port, users, interval)
    try:
        asyncio.run(w.run(ready, stop))
    except Exception as e:  # reported, not raised: the parent waits
        w.errors.append(f"watcher: {e!r}")
    ready.set()
    out.put((w.samples, w.errors[:20], len(w.errors)))


def start_watcher(args, srv, users):
    ctx = multiprocessing.get_context("fork")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    port = srv.srv.imap_port
    proc = ctx.Process(target=watch_main, args=(
        port, srv.lmtp_port, users, args.interval, ready, stop, out))
    proc.start()
    if not ready.wait(300):
        raise benchlib.ImapError("watchers did not get ready")
    return proc, stop, out


def latency_ms(samples, start, end):
    return [lat * 1000 for t, lat in samples if start <= t <= end]


def storm(args, srv, fleet, login_only=False):
    """Drops every session, reconnects all at once; returns figures."""
    pids = srv.pids()
    cpu0 = benchlib.cpu_times(pids)
    t_drop = time.monotonic()
    dropped = fleet.drop()
    start = time.monotonic() + 0.2
    res = fleet.open(None, start, args.storm_timeout + 60, login_only)
    end = max(res["times"], default=time.monotonic())
    time.sleep(2)  # the master reaps the processes that ended
    cpu = benchlib.cpu_delta(cpu0, benchlib.cpu_times(srv.pids()),
                             srv.pid())
    back = len(res["times"])
    return {"dropped": dropped, "back": back, "errors": len(res["errors"]),
            "first_errors": res["errors"][:3], "reused": res["reused"],
            "storm_s": end - start, "t_drop": t_drop, "start": start,
            "end": end, "cpu_s": cpu,
            "cpu_ms_per_login": cpu * 1000 / back if back else None}


def measure(args, system, mode, workdir, users):
    storm_users = users[:args.sessions]
    watch_users = users[args.sessions:]
    n = len(users)
    with idle_memory.Server(args, system, workdir, users, n, mode) as srv:
        fleet = benchlib.Fleet(srv.port, storm_users, benchlib.PASSWORD,
                               mode == "tls",
                               idle_memory.client_processes(args.sessions))
        try:
            first = fleet.open(args.concurrency)
            proc, stop, out = start_watcher(args, srv, watch_users)
            try:
                t_quiet = time.monotonic()
                time.sleep(args.quiet)
                m = storm(args, srv, fleet)
                time.sleep(1)
                logins = storm(args, srv, fleet, login_only=True)
                time.sleep(1)
            finally:
                stop.set()
                samples, errs, nerr = out.get(timeout=120)
                proc.join(30)
        finally:
            fleet.close()
    quiet = latency_ms(samples, t_quiet, m["t_drop"])
    during = latency_ms(samples, m["t_drop"], m["end"])
    m.update({"system": system, "mode": mode, "sessions": args.sessions,
              "first_open": first["open"], "watch_errors": nerr,
              "first_watch_errors": errs,
              "quiet_n": len(quiet), "storm_n": len(during),
              "quiet_p50": benchlib.percentile(quiet, 0.5),
              "quiet_p99": benchlib.percentile(quiet, 0.99),
              "storm_p50": benchlib.percentile(during, 0.5),
              "storm_p99": benchlib.percentile(during, 0.99),
              "storm_max": max(during, default=float("nan")),
              "login_back": logins["back"], "login_s": logins["storm_s"],
              "login_cpu_s": logins["cpu_s"],
              "cpu_ms_per_bare_login": logins["cpu_ms_per_login"],
              "login_errors": logins["first_errors"]})
    return m


def report(m):
    cpu = m["cpu_ms_per_login"]
    print(f"{m['system']:<9} {m['mode']:<5} {m['back']}/{m['sessions']} "
          f"back in IDLE in {m['storm_s']:.2f} s; server CPU "
          f"{m['cpu_s']:.2f} s = {cpu if cpu else float('nan'):.3f} ms "
          f"per reconnect; TLS resumed {m['reused']}", flush=True)
    print(f"    push latency ms: before p50 {m['quiet_p50']:.1f} p99 "
          f"{m['quiet_p99']:.1f} (n={m['quiet_n']}); during the storm p50 "
          f"{m['storm_p50']:.1f} p99 {m['storm_p99']:.1f} max "
          f"{m['storm_max']:.1f} (n={m['storm_n']})", flush=True)
    bare = m["cpu_ms_per_bare_login"]
    print(f"    LOGIN alone: {m['login_back']}/{m['sessions']} in "
          f"{m['login_s']:.2f} s; server CPU {m['login_cpu_s']:.2f} s = "
          f"{bare if bare else float('nan'):.3f} ms per login "
          f"(TCP accept and close included)", flush=True)
    if m["system"] == "pushmaild":
        ok_t = m["storm_s"] < TARGET_STORM_S and m["back"] == m["sessions"]
        ok_c = bare is not None and bare < TARGET_CPU_MS
        ok_l = m["storm_p50"] <= 2 * m["quiet_p50"]
        print(f"    targets: all back < {TARGET_STORM_S:g} s "
              f"{'PASS' if ok_t else 'FAIL'}; CPU per login < {TARGET_CPU_MS} ms "
              f"{'PASS' if ok_c else 'FAIL'}; push p50 within 2x "
              f"{'PASS' if ok_l else 'FAIL'}")
    if m["login_errors"]:
        print(f"    logins failed: {m['login_errors']}")
    if m["errors"] or m["watch_errors"]:
        print(f"    {m['errors']} reconnects failed {m['first_errors']}; "
              f"{m['watch_errors']} watcher errors "
              f"{m['first_watch_errors'][:3]}")


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    benchlib.stop_on_signals()
    benchlib.raise_nofile()
    args.binary = benchlib.find_pushmaild(args.pushmaild)
    if "pushmaild" in args.systems and not os.access(args.binary, os.X_OK):
        sys.exit(f"no pushmaild at {args.binary}")
    workdir = args.workdir or tempfile.mkdtemp(prefix="pushmail-storm-")
    os.makedirs(workdir, exist_ok=True)
    os.chmod(workdir, 0o755)
    users = benchlib.users(args.sessions + args.watchers)
    results = []
    try:
        idle_memory.seed_systems(args, workdir, users)
        for i, mode in enumerate(args.modes):
            order = args.systems if i % 2 == 0 else args.systems[::-1]
            for system in order:
                m = measure(args, system, mode, workdir, users)
                report(m)
                results.append(m)
    finally:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
