#!/usr/bin/env python3
"""Delivery benchmark: durable messages per second, pushmaild against the
reference stack, in one invocation.

SMTP case: pushmaild's SMTP listener against Postfix's smtpd relaying over
LMTP to Dovecot. LMTP case: pushmaild's LMTP listener against Dovecot's LMTP
directly. One asyncio client for both (no pipelining, one 4 KiB message per
transaction, each of 20 sessions sending its share in turn, recipients
spread over 100 users). A message counts as delivered once it is in the
store's new/ folder, which is polled after the last reply (Postfix's 250
only means queued). Runs alternate the order of the systems; the summary
quotes medians and the median ratio pushmaild/reference.
"""

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time

import benchlib

SYSTEMS = ("pushmaild", "reference")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pushmaild", help="pushmaild binary (default: "
                   "$PUSHMAILD, else build/pushmaild)")
    p.add_argument("--systems", default=",".join(SYSTEMS),
                   help="comma-separated subset of: " + ", ".join(SYSTEMS))
    p.add_argument("--protocols", default="smtp,lmtp")
    p.add_argument("--messages", type=int, help="default 5000")
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--pushmaild-config", action="append", default=[],
                   metavar="KEY=VALUE",
                   help="extra top-level line for pushmaild's config")
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--runs", type=int, help="default 3")
    p.add_argument("--quick", action="store_true",
                   help="default to 400 messages and 2 runs")
    p.add_argument("--deliver-timeout", type=float, default=120.0,
                   help="seconds to wait for queued mail to reach the store")
    p.add_argument("--tmpdir", help="parent of the work folders")
    p.add_argument("--keep", action="store_true",
                   help="keep the work folders (data, configs, logs)")
    p.add_argument("--json", help="write every measurement to this file")
    args = p.parse_args(argv)
    quick = args.quick
    args.messages = args.messages or (400 if quick else 5000)
    args.runs = args.runs or (2 if quick else 3)
    args.systems = [s for s in args.systems.split(",") if s]
    args.protocols = [s for s in args.protocols.split(",") if s]
    if set(args.systems) - set(SYSTEMS) or \
            set(args.protocols) - {"smtp", "lmtp"}:
        p.error("unknown system or protocol")
    return args


def cpu_seconds():
    """CPU time this process (the client) has used so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(args, port, lmtp, counter):
    """Runs one load and waits for the store to hold every accepted
    message. counter() returns the store's current message count."""
    base = counter()
    cpu0 = cpu_seconds()
    res = asyncio.run(benchlib.run_load(
        port, lmtp, args.messages, args.sessions,
        benchlib.users(args.users), args.size))
    cpu = cpu_seconds() - cpu0
    count, when = benchlib.wait_count(
        counter, base + res["accepted"], args.deliver_timeout)
    delivered = count - base
    return {
        "accepted": res["accepted"],
        "accepted_per_s": res["accepted"] / res["elapsed"],
        "delivered": delivered,
        "delivered_per_s": delivered / max(when - res["start"], 1e-9),
        "elapsed": res["elapsed"],
        "p50_ms": benchlib.percentile(res["latency"], 0.5) * 1000,
        "p99_ms": benchlib.percentile(res["latency"], 0.99) * 1000,
        "client_cpu": cpu / (time.monotonic() - res["start"]),
        "errors": res["errors"][:5],
        "error_count": len(res["errors"]),
    }


def run_pushmaild(args, workdir):
    """Starts a fresh pushmaild and measures each protocol against it."""
    out = {}
    addresses = benchlib.users(args.users)
    extra = "".join(line + "\n" for line in args.pushmaild_config)
    with benchlib.Pushmaild(args.binary, workdir, addresses,
                            extra_config=extra) as pm:
        for proto in args.protocols:
            port = pm.lmtp_port if proto == "lmtp" else pm.smtp_port
            out[proto] = measure(args, port, proto == "lmtp", pm.new_count)
        rows = pm.index_count()
        files = pm.new_count()
        if rows != files:
            out["warning"] = f"index rows {rows} != files in new/ {files}"
    return out


def run_reference(args, workdir):
    """Starts fresh Postfix and Dovecot; SMTP goes through Postfix, LMTP
    straight to Dovecot."""
    out = {}
    addresses = benchlib.users(args.users)
    with benchlib.RefStack(workdir, addresses) as ref:
        out["durability"] = ref.durability_note()
        for proto in args.protocols:
            lmtp = proto == "lmtp"
            port = ref.dovecot.lmtp_port if lmtp else ref.postfix.smtp_port
            out[proto] = measure(args, port, lmtp, ref.dovecot.total_new)
        if not ref.postfix.wait_queue_empty(10):
            out["warning"] = "Postfix queue not empty at the end"
    return out


def print_measurement(run, system, proto, m):
    print(f"run {run + 1}  {system:<9}  {proto}  "
          f"accepted {m['accepted']} in {m['elapsed']:.2f}s = "
          f"{m['accepted_per_s']:.1f}/s  delivered {m['delivered']} = "
          f"{m['delivered_per_s']:.1f}/s  reply p50 {m['p50_ms']:.1f} ms "
          f"p99 {m['p99_ms']:.1f} ms  client cpu "
          f"{100 * m['client_cpu']:.0f}%", flush=True)
    if m["error_count"]:
        print(f"    {m['error_count']} errors, first: {m['errors']}")
    if m["client_cpu"] > 0.8:
        print("    warning: the client used most of a core; it may be "
              "the bottleneck")


def run_once(args, run, system, parent):
    """One system, every protocol, in its own fresh work folder."""
    workdir = os.path.join(parent, f"run{run + 1}-{system}")
    os.makedirs(workdir)
    try:
        if system == "pushmaild":
            out = run_pushmaild(args, workdir)
        else:
            out = run_reference(args, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    for proto in args.protocols:
        print_measurement(run, system, proto, out[proto])
    if "warning" in out:
        print(f"    warning: {out['warning']}")
    return out


def ratios(results, proto, key):
    """Per-run ratios pushmaild/reference of one figure."""
    out = []
    for run in results:
        if "pushmaild" in run and "reference" in run:
            ref = run["reference"][proto][key]
            if ref > 0:
                out.append(run["pushmaild"][proto][key] / ref)
    return out


def print_summary(args, results):
    for proto in args.protocols:
        names = {"pushmaild": "pushmaild",
                 "reference": "Dovecot LMTP" if proto == "lmtp"
                 else "Postfix->Dovecot"}
        print(f"\n{proto.upper()}: {args.messages} messages of {args.size} "
              f"bytes, {args.sessions} sessions, {args.users} users, "
              f"median of {len(results)} runs")
        for system in args.systems:
            acc = [r[system][proto]["accepted_per_s"] for r in results]
            dlv = [r[system][proto]["delivered_per_s"] for r in results]
            print(f"  {names[system]:<17} "
                  f"accepted/s {benchlib.median(acc):8.1f}   "
                  f"delivered/s {benchlib.median(dlv):8.1f}")
        r = ratios(results, proto, "delivered_per_s")
        if r:
            print(f"  ratio pushmaild/reference, delivered/s: median "
                  f"{benchlib.median(r):.2f} (runs: "
                  f"{', '.join(f'{x:.2f}' for x in r)})")


def print_header(args):
    print(f"delivery benchmark: systems {', '.join(args.systems)}; "
          f"protocols {', '.join(args.protocols)}; loopback only")
    if "pushmaild" in args.systems:
        mode = "syncfs" if any("fsync_mode" in c and "syncfs" in c
                               for c in args.pushmaild_config) else "file"
        what = ("fdatasync of the file, a synchronous=FULL index commit "
                "and an fsync of new/" if mode == "file" else
                "a syncfs of the written file, then the index commit, the "
                "rename into new/ and a second syncfs (shared by the "
                "deliveries in flight)")
        print(f"pushmaild: {args.binary}; fsync_mode = {mode}: its 250 "
              f"follows {what}")


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    benchlib.stop_on_signals()
    args.binary = benchlib.find_pushmaild(args.pushmaild)
    if "pushmaild" in args.systems and not os.access(args.binary, os.X_OK):
        sys.exit(f"no pushmaild at {args.binary}; give --pushmaild or "
                 "PUSHMAILD, or run --systems reference")
    print_header(args)
    parent = tempfile.mkdtemp(prefix="pushmail-bench-", dir=args.tmpdir)
    os.chmod(parent, 0o755)  # the mail daemons' users must pass through
    results = []
    try:
        for run in range(args.runs):
            order = args.systems if run % 2 == 0 else args.systems[::-1]
            results.append({s: run_once(args, run, s, parent)
                            for s in order})
    finally:
        if not args.keep:
            shutil.rmtree(parent, ignore_errors=True)
    if "reference" in args.systems:
        print("reference durability: " + results[0]["reference"]["durability"])
    print_summary(args, results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "runs": results}, f, indent=1)


if __name__ == "__main__":
    main()
