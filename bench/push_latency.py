#!/usr/bin/env python3
"""Push latency: from the moment a sending client has written the final
".\\r\\n" of an LMTP DATA to the moment a watching IMAP client in IDLE
reads "* n EXISTS", for pushmaild and for Dovecot in the same invocation.

N users each hold one IMAP session in IDLE on a seeded INBOX (bench/seed.py:
--messages-per-inbox messages each). A sender delivers --count messages at
--rate per second to random users over LMTP, the same protocol for both
servers (pushmaild's LMTP listener, Dovecot's LMTP service), so the cost of
making each message durable before it is announced counts for both. The
watchers live in child processes (at most SESSIONS_PER_PROCESS each, as one
process may hold only 20,000 descriptors); every timestamp is
CLOCK_MONOTONIC (time.monotonic_ns), comparable across processes. A
message to a user whose INBOX then holds c messages counts as pushed when
that user's watcher first reads "* n EXISTS" with n >= c (Dovecot may fold
two quick messages into one EXISTS). The fan-out case: --fanout sessions
all IDLE on one user's INBOX; latency to the first and to the last of them.

After each pushmaild run the server's own histogram (event=push_latency,
from the durable commit to the last watcher's output queued) is read from
its log and printed.
"""

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import random
import re
import resource
import shutil
import socket
import sys
import tempfile
import time

import benchlib
import refstack
import seed

SYSTEMS = ("pushmaild", "dovecot")
SESSIONS_PER_PROCESS = 5000
CONNECT_CONCURRENCY = 50
SETUP_TIMEOUT = 900.0
PUSH_TIMEOUT = 5.0
REFERENCE_P50_MS = 505.0
TARGET_P99_MS = 3.0
SERVER_TARGET_P99_US = 200.0
EXISTS_RE = re.compile(rb"^\* (\d+) EXISTS\r?\n$")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pushmaild", help="pushmaild binary (default: "
                   "$PUSHMAILD, else build/pushmaild)")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--pushmaild-config", action="append", default=[],
                   metavar="KEY=VALUE", help="extra top-level line for "
                   "pushmaild's config, e.g. fsync_mode=file")
    p.add_argument("--users", help="comma-separated session counts "
                   "(default 100,1000,10000; quick: 100,1000)")
    p.add_argument("--messages-per-inbox", type=int,
                   help="seeded messages per INBOX (default 10000, capped "
                   "so the seed fits --max-disk; quick: 1000)")
    p.add_argument("--max-disk", type=float, default=20.0,
                   help="GiB one system's seed may use (default 20)")
    p.add_argument("--rate", type=float, default=50.0,
                   help="messages per second")
    p.add_argument("--count", type=int, help="messages per case "
                   "(default 500; quick: 100)")
    p.add_argument("--fanout", type=int, help="sessions on one mailbox "
                   "(default 1000; 0: skip)")
    p.add_argument("--fanout-count", type=int, help="messages in the "
                   "fan-out case (default 50; quick: 20)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    p.add_argument("--tmpdir", help="parent of the work folders")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    q = args.quick
    args.users = [int(x) for x in
                  (args.users or ("100,1000" if q else
                                  "100,1000,10000")).split(",") if x]
    args.count = args.count or (100 if q else 500)
    args.fanout = 1000 if args.fanout is None else args.fanout
    args.fanout_count = args.fanout_count or (20 if q else 50)
    args.requested_mpi = args.messages_per_inbox or (1000 if q else 10000)
    args.systems = [s for s in args.systems.split(",") if s]
    if set(args.systems) - set(SYSTEMS) or not args.users or \
            max(args.users + [args.fanout]) > 19000 or args.rate <= 0:
        p.error("bad --systems, --users, --fanout or --rate")
    return args


def inbox_size(args, users):
    """The seeded INBOX size for users: the requested one, or the largest
    round figure whose seed fits --max-disk."""
    m = args.requested_mpi
    budget = args.max_disk * 2**30
    while m > 10 and max(seed.estimate(users, m).values()) > budget:
        m = m // 2 if str(m)[0] != "5" else m * 2 // 5
    return m


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# The watchers (child processes) -------------------------------------------

class Watcher:
    """One IMAP session in IDLE; records (n, monotonic ns) per EXISTS."""

    def __init__(self, idx, user):
        self.idx = idx
        self.user = user
        self.base = None
        self.seen = []
        self.reader = self.writer = None

    async def command(self, tag, line):
        """Sends a tagged command, returns the untagged lines before OK."""
        self.writer.write(f"{tag} {line}\r\n".encode())
        await self.writer.drain()
        lines = []
        while True:
            got = await self.reader.readline()
            if not got:
                raise ConnectionError(f"{self.user}: closed after {line}")
            if got.startswith(tag.encode() + b" "):
                if not got.startswith(tag.encode() + b" OK"):
                    raise ConnectionError(f"{self.user}: {got!r}")
                return lines
            lines.append(got)

    async def start(self, port, password):
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", port, limit=1 << 20)
        await self.reader.readline()
        await self.command("a", f'LOGIN "{self.user}" "{password}"')
        for line in await self.command("b", "SELECT INBOX"):
            m = EXISTS_RE.match(line)
            if m:
                self.base = int(m.group(1))
        self.writer.write(b"c IDLE\r\n")
        await self.writer.drain()
        while not (await self.reader.readline()).startswith(b"+"):
            pass

    async def watch(self):
        while True:
            line = await self.reader.readline()
            now = time.monotonic_ns()
            if not line:
                return
            m = EXISTS_RE.match(line)
            if m:
                self.seen.append((int(m.group(1)), now))


async def watcher_main(port, password, jobs, ready, stop):
    """Opens every session of jobs ([(idx, user)]), reports the count on
    ready, watches until stop is set; returns the watchers."""
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
    watchers = [Watcher(i, u) for i, u in jobs]

    async def open_one(w):
        async with sem:
            await asyncio.wait_for(w.start(port, password), 120)

    res = await asyncio.gather(*(open_one(w) for w in watchers),
                               return_exceptions=True)
    errors = [repr(r) for r in res if r is not None]
    ready.put((len(watchers) - len(errors), errors[:3]))
    tasks = [asyncio.create_task(w.watch()) for w in watchers
             if w.writer is not None]
    while not stop.is_set():
        await asyncio.sleep(0.1)
    for t in tasks:
        t.cancel()
    for w in watchers:
        if w.writer is not None:
            w.writer.close()
    return watchers


def watcher_process(port, password, jobs, ready, stop, results):
    raise_nofile()
    watchers = asyncio.run(watcher_main(port, password, jobs, ready, stop))
    results.put([(w.idx, w.base, w.seen) for w in watchers])


class WatcherPool:
    """Child processes holding the sessions of jobs ([(idx, user)])."""

    def __init__(self, port, password, jobs):
        ctx = multiprocessing.get_context("fork")
        self.ready, self.results = ctx.Queue(), ctx.Queue()
        self.stop = ctx.Event()
        nproc = max(1, math.ceil(len(jobs) / SESSIONS_PER_PROCESS))
        self.procs = [ctx.Process(target=watcher_process, args=(
            port, password, jobs[i::nproc], self.ready, self.stop,
            self.results)) for i in range(nproc)]
        for p in self.procs:
            p.start()

    def wait_ready(self):
        """Returns (sessions idle, first errors) once every child is."""
        idle, errors = 0, []
        for _ in self.procs:
            n, errs = self.ready.get(timeout=SETUP_TIMEOUT)
            idle += n
            errors += errs
        return idle, errors

    def finish(self):
        """Stops the children; returns {idx: (base, [(n, ns)])}."""
        self.stop.set()
        out = {}
        try:
            for _ in self.procs:
                for idx, base, seen in self.results.get(timeout=120):
                    out[idx] = (base, seen)
        finally:
            for p in self.procs:
                p.join(10)
                if p.is_alive():
                    p.kill()
        return out


# The sender ----------------------------------------------------------------

class LmtpSender:
    """A blocking LMTP session; send() returns when the final '.' was
    written (monotonic ns), after which the 250 is read."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb")
        self.expect(220)
        self.command(b"LHLO sender.example", 250)

    def expect(self, code):
        for _ in range(100):
            line = self.f.readline(4096)
            if len(line) < 4 or not line[:3].isdigit():
                raise OSError(f"bad LMTP reply {line!r}")
            if line[3:4] != b"-":
                if int(line[:3]) != code:
                    raise OSError(f"LMTP: {line!r}")
                return
        raise OSError("LMTP reply too long")

    def command(self, line, code):
        self.sock.sendall(line + b"\r\n")
        self.expect(code)

    def send(self, rcpt, data):
        self.command(b"MAIL FROM:<sender@client.example>", 250)
        self.command(f"RCPT TO:<{rcpt}>".encode(), 250)
        self.command(b"DATA", 354)
        self.sock.sendall(data + b".\r\n")
        t = time.monotonic_ns()
        self.expect(250)
        return t

    def close(self):
        with contextlib.suppress(OSError):
            self.command(b"QUIT", 221)
        self.sock.close()


def send_paced(port, plan, rate):
    """Delivers plan ([rcpt]) at rate per second; returns the send times."""
    sender = LmtpSender(port)
    times = []
    t0 = time.monotonic()
    try:
        for k, rcpt in enumerate(plan):
            delay = t0 + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            times.append(sender.send(rcpt, benchlib.make_message(k, rcpt)))
    finally:
        sender.close()
    return times


# One measurement --------------------------------------------------------------

def latencies(plan_idx, sent, seen, base):
    """Per message, ms from its final '.' to the first EXISTS >= the count
    its user's INBOX reached with it (None when never seen). plan_idx:
    watcher index per message; seen[idx] = [(n, ns)]; base[idx]."""
    count = dict(base)
    out = []
    for idx, t in zip(plan_idx, sent):
        count[idx] += 1
        hit = next((ns for n, ns in seen.get(idx, []) if n >= count[idx]),
                   None)
        out.append(None if hit is None else (hit - t) / 1e6)
    return out


def stats(values):
    ok = [v for v in values if v is not None]
    return {"n": len(ok), "lost": len(values) - len(ok),
            "p50": benchlib.percentile(ok, 0.5),
            "p99": benchlib.percentile(ok, 0.99),
            "max": max(ok, default=float("nan"))}


def measure(imap_port, lmtp_port, users, args, rng):
    """N distinct users, one session each; --count messages to random
    ones. Returns the latency stats (ms)."""
    jobs = list(enumerate(users))
    pool = WatcherPool(imap_port, benchlib.PASSWORD, jobs)
    try:
        idle, errors = pool.wait_ready()
        if idle != len(jobs):
            raise RuntimeError(f"{idle}/{len(jobs)} sessions idle: {errors}")
        time.sleep(1.0)
        plan_idx = [rng.randrange(len(users)) for _ in range(args.count)]
        sent = send_paced(lmtp_port, [users[i] for i in plan_idx],
                          args.rate)
        time.sleep(PUSH_TIMEOUT)
    finally:
        res = pool.finish()
    base = {i: res[i][0] for i in res}
    seen = {i: res[i][1] for i in res}
    return stats(latencies(plan_idx, sent, seen, base))


def measure_fanout(imap_port, lmtp_port, user, args):
    """--fanout sessions on user's INBOX; per message the latency to the
    first and to the last watcher. Returns two stats dicts (ms)."""
    jobs = [(i, user) for i in range(args.fanout)]
    pool = WatcherPool(imap_port, benchlib.PASSWORD, jobs)
    try:
        idle, errors = pool.wait_ready()
        if idle != len(jobs):
            raise RuntimeError(f"{idle}/{len(jobs)} sessions idle: {errors}")
        time.sleep(1.0)
        sent = send_paced(lmtp_port, [user] * args.fanout_count, args.rate)
        time.sleep(PUSH_TIMEOUT)
    finally:
        res = pool.finish()
    first, last = [], []
    for k, t in enumerate(sent):
        per = []
        for base, seen in res.values():
            hit = next((ns for n, ns in seen if n >= base + k + 1), None)
            per.append(None if hit is None else (hit - t) / 1e6)
        got = [v for v in per if v is not None]
        first.append(min(got) if got else None)
        last.append(max(got) if len(got) == len(per) else None)
    return stats(first), stats(last)


# The two systems -----------------------------------------------------------

class PushmaildImap(benchlib.Pushmaild):
    """benchlib.Pushmaild with an IMAP listener too, and a longer wait for
    readiness (start-up recovery reads every seeded mailbox)."""

    ready_timeout = 900

    def _config(self):
        if self.imap_port is None:
            self.imap_port = refstack.free_port()
        return super()._config() + ("[listener imap]\nprotocol = imap\n"
                                    f"address = 127.0.0.1:{self.imap_port}\n")

    def _wait_ready(self, timeout):
        super()._wait_ready(self.ready_timeout)

    imap_port = None


def server_histogram(log):
    """The last event=push_latency line of pushmaild's log, or None."""
    lines = [line for line in refstack.tail(log, 10**6).splitlines()
             if "event=push_latency" in line]
    if not lines:
        return None
    return dict(kv.split("=", 1) for kv in lines[-1].split()
                if "=" in kv and kv.split("=", 1)[0] in
                ("n", "p50_us", "p90_us", "p99_us", "max_us"))


def run_pushmaild(args, workdir, case, n, mpi, rng):
    addresses = benchlib.users(n)
    extra = "".join(f"{line}\n" for line in args.pushmaild_config)
    pm = PushmaildImap(args.binary, workdir, addresses, extra_config=extra)
    print(f"  seeding pushmaild: {n} users x {mpi} messages", flush=True)
    seed.seed_pushmaild(pm, mpi, log=lambda s: print(s, flush=True))
    pm.start()
    try:
        if case == "fanout":
            out = measure_fanout(pm.imap_port, pm.lmtp_port, addresses[0],
                                 args)
        else:
            out = measure(pm.imap_port, pm.lmtp_port, addresses, args, rng)
    finally:
        pm.stop()
    return out, server_histogram(pm.log)


def run_dovecot(args, workdir, case, n, mpi, rng):
    addresses = benchlib.users(n)
    sessions = args.fanout if case == "fanout" else n
    dov = refstack.Dovecot(workdir, addresses, benchlib.PASSWORD,
                           max_sessions=sessions + 10)
    with refstack.raised_inotify_instances(sessions + 1000), dov:
        print(f"  seeding Dovecot: {n} users x {mpi} messages", flush=True)
        seed.seed_dovecot(dov, benchlib.PASSWORD, mpi,
                          log=lambda s: print(s, flush=True))
        if case == "fanout":
            out = measure_fanout(dov.imap_port, dov.lmtp_port, addresses[0],
                                 args)
        else:
            out = measure(dov.imap_port, dov.lmtp_port, addresses, args,
                          rng)
    return out, None


# Reporting -------------------------------------------------------------------

def fmt(s):
    return (f"p50 {s['p50']:8.2f} ms  p99 {s['p99']:8.2f} ms  max "
            f"{s['max']:8.2f} ms  (n={s['n']}, lost {s['lost']})")


def report(system, label, out, hist):
    if isinstance(out, tuple):
        print(f"  {system:<9} {label} first watcher: {fmt(out[0])}")
        print(f"  {system:<9} {label} last watcher:  {fmt(out[1])}")
    else:
        print(f"  {system:<9} {label}: {fmt(out)}")
    if hist:
        print(f"  {system:<9} server histogram (commit -> last watcher's "
              f"output queued): n={hist.get('n')} p50 {hist.get('p50_us')} "
              f"us  p90 {hist.get('p90_us')} us  p99 {hist.get('p99_us')} "
              f"us  max {hist.get('max_us')} us  (target p99 < "
              f"{SERVER_TARGET_P99_US:g} us)", flush=True)


def summarize(label, results):
    pm, dov = results.get("pushmaild"), results.get("dovecot")
    if pm is None:
        return
    pm = pm[1] if isinstance(pm, tuple) else pm
    line = f"  => {label}: pushmaild p99 {pm['p99']:.2f} ms"
    if label.endswith("idle sessions"):
        verdict = "PASS" if pm["p99"] < TARGET_P99_MS else "FAIL"
        line += f" (target < {TARGET_P99_MS:g} ms: {verdict})"
    if dov is not None:
        dov = dov[1] if isinstance(dov, tuple) else dov
        line += (f"; Dovecot/pushmaild p50 {dov['p50'] / pm['p50']:.0f}x, "
                 f"p99 {dov['p99'] / pm['p99']:.0f}x")
    print(line, flush=True)


def run_case(args, parent, case, n, turn, rng_seed):
    fanout = case == "fanout"
    nusers = 1 if fanout else n
    mpi = inbox_size(args, nusers)
    label = (f"{args.fanout} sessions on one mailbox" if fanout
             else f"{n} idle sessions")
    count = args.fanout_count if fanout else args.count
    print(f"\n{label}, {mpi} messages per INBOX, {count} messages at "
          f"{args.rate:g}/s", flush=True)
    order = args.systems if turn % 2 == 0 else args.systems[::-1]
    results = {}
    for system in order:
        workdir = os.path.join(parent, f"{case}-{n}-{system}")
        os.makedirs(workdir)
        rng = random.Random(rng_seed)
        try:
            run = run_pushmaild if system == "pushmaild" else run_dovecot
            out, hist = run(args, workdir, case, nusers, mpi, rng)
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        report(system, label, out, hist)
        results[system] = out
    summarize(label, results)
    return results


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    benchlib.stop_on_signals()
    raise_nofile()
    args.binary = benchlib.find_pushmaild(args.pushmaild)
    if "pushmaild" in args.systems and not os.access(args.binary, os.X_OK):
        sys.exit(f"no pushmaild at {args.binary}")
    print(f"push latency: final '.' of LMTP DATA -> '* n EXISTS' in IDLE; "
          f"pushmaild {args.binary} "
          f"{' '.join(args.pushmaild_config) or '(default config)'}; "
          f"Dovecot's documented delay is ~{REFERENCE_P50_MS:g} ms; "
          "loopback, 4 KiB messages")
    parent = tempfile.mkdtemp(prefix="pushmail-push-", dir=args.tmpdir)
    os.chmod(parent, 0o755)
    try:
        turn = 0
        for n in args.users:
            run_case(args, parent, "idle", n, turn, args.seed + turn)
            turn += 1
        if args.fanout:
            run_case(args, parent, "fanout", args.fanout, turn,
                     args.seed + turn)
    finally:
        if not args.keep:
            shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    main()
