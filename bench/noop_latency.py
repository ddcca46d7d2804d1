#!/usr/bin/env python3
"""NOOP round trips while the server is busy delivering.

While 2,000 messages go in over 20 concurrent SMTP sessions, a prober in a
separate process (so the load generator's event loop does not delay it)
keeps its own SMTP session and sends NOOP in a loop, one every --interval
seconds, recording each round trip. Prints p50/p99/max of the round trips
taken during the load (and at rest, before it), for pushmaild (target:
p99 < 5 ms) and for Postfix's smtpd (with Dovecot behind it) as reference.
"""

import argparse
import asyncio
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import time

import benchlib

SYSTEMS = ("pushmaild", "reference")
TARGET_P99_MS = 5.0
PROBE_MAX_SECONDS = 600
PROBE_MAX_SAMPLES = 1_000_000
# Postfix counts NOOP as a junk command and slows the session down after
# smtpd_junk_command_limit (default 100) of them; lift it for the prober.
POSTFIX_MAIN = {"smtpd_junk_command_limit": "100000000"}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pushmaild", help="pushmaild binary (default: "
                   "$PUSHMAILD, else build/pushmaild)")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--interval", type=float, default=0.001,
                   help="pause between NOOPs, seconds")
    p.add_argument("--tmpdir", help="parent of the work folders")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    args.systems = [s for s in args.systems.split(",") if s]
    if set(args.systems) - set(SYSTEMS):
        p.error("unknown system")
    return args


def read_reply(f):
    """Reads one SMTP reply from a blocking file; returns its code."""
    for _ in range(100):
        line = f.readline(4096)
        if len(line) < 4 or not line[:3].isdigit():
            raise OSError(f"bad reply {line!r}")
        if line[3:4] != b"-":
            return int(line[:3])
    raise OSError("reply too long")


def probe_session(port):
    """Opens the prober's SMTP session (greeting read, EHLO done)."""
    sock = socket.create_connection(("127.0.0.1", port), 10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(30)
    f = sock.makefile("rb")
    if read_reply(f) != 220:
        raise OSError("no 220 greeting")
    sock.sendall(b"EHLO prober.example\r\n")
    if read_reply(f) != 250:
        raise OSError("EHLO refused")
    return sock, f


def probe(port, interval, ready, stop, results):
    """The prober process: NOOP until stop is set (or the bounds are
    reached); puts ([(monotonic time, round trip seconds)], error) on
    results."""
    samples, error = [], None
    try:
        sock, f = probe_session(port)
        ready.set()
        deadline = time.monotonic() + PROBE_MAX_SECONDS
        while not stop.is_set() and len(samples) < PROBE_MAX_SAMPLES:
            t0 = time.monotonic()
            if t0 > deadline:
                break
            sock.sendall(b"NOOP\r\n")
            if read_reply(f) != 250:
                raise OSError("NOOP not answered with 250")
            samples.append((t0, time.monotonic() - t0))
            time.sleep(interval)
        sock.close()
    except OSError as e:
        error = str(e)
    ready.set()
    results.put((samples, error))


def measure(args, smtp_port):
    """Runs the prober around one delivery load; returns the figures."""
    ctx = multiprocessing.get_context("fork")
    ready, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    prober = ctx.Process(target=probe, args=(smtp_port, args.interval,
                                             ready, stop, results))
    prober.start()
    try:
        ready.wait(30)
        time.sleep(0.5)  # samples at rest, for comparison
        load = asyncio.run(benchlib.run_load(
            smtp_port, False, args.messages, args.sessions,
            benchlib.users(args.users), args.size))
        stop.set()
        samples, error = results.get(timeout=60)
    finally:
        stop.set()
        prober.join(10)
        if prober.is_alive():
            prober.kill()
    return summarize(samples, error, load)


def summarize(samples, error, load):
    """Splits the round trips into at-rest and under-load figures (ms)."""
    busy = [rtt * 1000 for t, rtt in samples
            if load["start"] <= t <= load["end"]]
    rest = [rtt * 1000 for t, rtt in samples if t < load["start"]]
    return {
        "error": error,
        "load_errors": len(load["errors"]),
        "accepted_per_s": load["accepted"] / load["elapsed"],
        "n": len(busy),
        "p50": benchlib.percentile(busy, 0.5),
        "p99": benchlib.percentile(busy, 0.99),
        "max": max(busy, default=float("nan")),
        "rest_p50": benchlib.percentile(rest, 0.5),
        "rest_p99": benchlib.percentile(rest, 0.99),
    }


def run_system(args, system, workdir):
    addresses = benchlib.users(args.users)
    if system == "pushmaild":
        with benchlib.Pushmaild(args.binary, workdir, addresses) as pm:
            return measure(args, pm.smtp_port)
    with benchlib.RefStack(workdir, addresses, POSTFIX_MAIN) as ref:
        return measure(args, ref.postfix.smtp_port)


def report(run, system, m):
    name = "pushmaild" if system == "pushmaild" else "Postfix smtpd"
    line = (f"run {run + 1}  {name:<13}  NOOP under load: n={m['n']} "
            f"p50 {m['p50']:.2f} ms  p99 {m['p99']:.2f} ms  "
            f"max {m['max']:.2f} ms  (at rest p50 {m['rest_p50']:.2f} "
            f"p99 {m['rest_p99']:.2f})  load {m['accepted_per_s']:.0f} "
            "msg/s")
    if system == "pushmaild":
        verdict = "PASS" if m["p99"] < TARGET_P99_MS else "FAIL"
        line += f"  target p99 < {TARGET_P99_MS:g} ms: {verdict}"
    print(line, flush=True)
    if m["error"] or m["load_errors"]:
        print(f"    prober error: {m['error']}; "
              f"{m['load_errors']} delivery errors")


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    benchlib.stop_on_signals()
    args.binary = benchlib.find_pushmaild(args.pushmaild)
    if "pushmaild" in args.systems and not os.access(args.binary, os.X_OK):
        sys.exit(f"no pushmaild at {args.binary}; give --pushmaild or "
                 "PUSHMAILD, or run --systems reference")
    print(f"NOOP latency: {args.messages} messages over {args.sessions} "
          f"SMTP sessions, one NOOP every {args.interval * 1000:g} ms "
          "on a separate session")
    parent = tempfile.mkdtemp(prefix="pushmail-noop-", dir=args.tmpdir)
    os.chmod(parent, 0o755)  # the mail daemons' users must pass through
    try:
        for run in range(args.runs):
            order = args.systems if run % 2 == 0 else args.systems[::-1]
            for system in order:
                workdir = os.path.join(parent, f"run{run + 1}-{system}")
                os.makedirs(workdir)
                report(run, system, run_system(args, system, workdir))
    finally:
        if not args.keep:
            shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    main()
