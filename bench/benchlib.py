"""Shared pieces of the pushmail benchmarks.

An asyncio SMTP/LMTP client (no pipelining, one message per transaction),
the 4 KiB test message, a runner for pushmaild with a private data
directory, the reference stack (Postfix in front of Dovecot) from
tests/proto/refstack.py, and small statistics helpers. Loopback only;
every wait is bounded. Standard library only.
"""

import asyncio
import contextlib
import glob
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "proto"))
import refstack  # noqa: E402

DOMAIN = "bench.local"
PASSWORD = "bench-secret"
REPLY_TIMEOUT = 60.0
MAX_REPLY_LINES = 100


class SmtpError(Exception):
    """A reply other than the one expected, or a broken session."""


def users(count):
    """The benchmark's recipient addresses: user1@bench.local and up."""
    return [f"user{i}@{DOMAIN}" for i in range(1, count + 1)]


def make_message(seq, rcpt, size=4096):
    """A message of exactly size bytes (CRLF lines, no line starting with
    a dot), unique by its Message-ID."""
    head = (f"From: Bench Sender <sender@client.example>\r\n"
            f"To: <{rcpt}>\r\n"
            f"Subject: delivery benchmark message {seq}\r\n"
            f"Message-ID: <bench.{seq}.{time.time_ns()}@client.example>\r\n"
            f"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
            f"MIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=us-ascii\r\n\r\n").encode()
    full, rest = divmod(size - len(head), 76)
    if rest == 1:
        full, rest = full - 1, 77
    body = (b"x" * 74 + b"\r\n") * full
    if rest:
        body += b"y" * (rest - 2) + b"\r\n"
    return head + body


class SmtpClient:
    """One SMTP or LMTP session over asyncio streams."""

    def __init__(self, reader, writer, lmtp):
        self.reader = reader
        self.writer = writer
        self.lmtp = lmtp

    @classmethod
    async def connect(cls, port, lmtp=False, host="127.0.0.1"):
        """Connects, reads the greeting and says EHLO (LHLO for LMTP)."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), REPLY_TIMEOUT)
        client = cls(reader, writer, lmtp)
        await client.expect(220)
        hello = "LHLO" if lmtp else "EHLO"
        await client.command(f"{hello} client.example", 250)
        return client

    async def reply(self):
        """Reads one (possibly multi-line) reply; returns (code, text)."""
        lines = []
        for _ in range(MAX_REPLY_LINES):
            line = await asyncio.wait_for(self.reader.readline(),
                                          REPLY_TIMEOUT)
            if len(line) < 4 or not line[:3].isdigit():
                raise SmtpError(f"bad or missing reply: {line!r}")
            lines.append(line.decode(errors="replace").rstrip())
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(lines)
        raise SmtpError("reply too long")

    async def expect(self, code):
        """Reads a reply and raises SmtpError unless it has code."""
        got, text = await self.reply()
        if got != code:
            raise SmtpError(text)
        return text

    async def command(self, line, code):
        """Sends one command line and expects code."""
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()
        return await self.expect(code)

    async def send(self, sender, rcpts, data):
        """One transaction: MAIL, RCPT each, DATA. data must end in CRLF
        and be dot-stuffed. Returns when every final reply is 250."""
        await self.command(f"MAIL FROM:<{sender}>", 250)
        for rcpt in rcpts:
            await self.command(f"RCPT TO:<{rcpt}>", 250)
        await self.command("DATA", 354)
        self.writer.write(data + b".\r\n")
        await self.writer.drain()
        for _ in rcpts if self.lmtp else [None]:
            await self.expect(250)

    async def quit(self):
        """Says QUIT (ignoring errors) and closes the socket."""
        with contextlib.suppress(Exception):
            await self.command("QUIT", 221)
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def _session_load(port, lmtp, jobs, start, result):
    client = await SmtpClient.connect(port, lmtp)
    result["ready"] += 1
    await start.wait()
    try:
        for seq, rcpt, data in jobs:
            t0 = time.monotonic()
            await client.send("sender@client.example", [rcpt], data)
            result["latency"].append(time.monotonic() - t0)
            result["accepted"] += 1
    except (SmtpError, OSError, asyncio.TimeoutError) as e:
        result["errors"].append(str(e))
    finally:
        await client.quit()


async def run_load(port, lmtp, messages, sessions, rcpts, size=4096):
    """Sends messages (one recipient each, spread round robin over rcpts)
    over sessions concurrent sessions, each sending its share in turn.
    The clock starts once every session has said EHLO/LHLO. Returns a dict:
    accepted, errors, latency (seconds per transaction), start, end
    (time.monotonic values) and elapsed."""
    shares = [[] for _ in range(sessions)]
    for seq in range(messages):
        rcpt = rcpts[seq % len(rcpts)]
        shares[seq % sessions].append((seq, rcpt, make_message(seq, rcpt,
                                                               size)))
    result = {"accepted": 0, "errors": [], "latency": [], "ready": 0}
    start = asyncio.Event()
    tasks = [asyncio.create_task(_session_load(port, lmtp, share, start,
                                               result))
             for share in shares]
    await _wait_ready(result, sessions, tasks)
    result["start"] = time.monotonic()
    start.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    result["end"] = time.monotonic()
    result["elapsed"] = result["end"] - result["start"]
    result["errors"] += [repr(o) for o in outcomes if o is not None]
    return result


async def _wait_ready(result, sessions, tasks):
    deadline = time.monotonic() + REPLY_TIMEOUT
    while result["ready"] < sessions:
        if any(t.done() for t in tasks) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)


def wait_count(counter, target, timeout, interval=0.01):
    """Polls counter() until it reaches target or timeout seconds pass.
    Returns (count, time.monotonic() when it was read)."""
    deadline = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        count = counter()
        if count >= target or now > deadline:
            return count, now
        time.sleep(interval)


def find_pushmaild(path=None):
    """The pushmaild binary: path, else $PUSHMAILD, else build/pushmaild
    next to this folder."""
    path = path or os.environ.get("PUSHMAILD") or \
        os.path.join(HERE, "..", "build", "pushmaild")
    return os.path.abspath(path)


class Pushmaild:
    """pushmaild serving SMTP and LMTP on free loopback ports from a
    private data directory under tmpdir, with the given users added."""

    def __init__(self, binary, tmpdir, addresses, extra_config="",
                 log_level="info"):
        self.binary = binary
        self.dir = os.path.join(os.path.abspath(tmpdir), "pushmaild")
        self.data = os.path.join(self.dir, "data")
        self.conf = os.path.join(self.dir, "pushmaild.conf")
        self.log = os.path.join(self.dir, "pushmaild.log")
        self.addresses = list(addresses)
        self.extra_config = extra_config
        self.log_level = log_level
        self.proc = None
        self.smtp_port = self.lmtp_port = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        """Writes the config and the users file, starts 'serve' and waits
        for event=ready on stderr. Returns (smtp_port, lmtp_port)."""
        os.makedirs(self.data, 0o755, exist_ok=True)
        self.smtp_port = refstack.free_port()
        self.lmtp_port = refstack.free_port()
        with open(self.conf, "w") as f:
            f.write(self._config())
        self._write_users()
        self.proc = refstack.spawn([self.binary, "-c", self.conf, "serve"],
                                   self.log)
        try:
            self._wait_ready(20)
        except Exception:
            self.stop()
            raise
        return self.smtp_port, self.lmtp_port

    def stop(self):
        """SIGTERM, then SIGKILL after 15 s. Safe to call twice."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
        refstack.stop_process(self.proc)
        self.proc = None

    def new_count(self):
        """Files in every mailbox's new/ under the data directory."""
        return sum(refstack.count_files(d) for d in
                   glob.glob(os.path.join(self.data, "mail", "*", "new")))

    def index_count(self):
        """Rows in every user's message table (None if unreadable)."""
        total = 0
        for db in glob.glob(os.path.join(self.data, "mail", "*",
                                         "pushmail.sqlite")):
            try:
                with contextlib.closing(sqlite3.connect(
                        f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
                    total += c.execute(
                        "SELECT count(*) FROM message").fetchone()[0]
            except sqlite3.Error:
                return None
        return total

    def _config(self):
        return (f"data_dir = {self.data}\n"
                f"hostname = {DOMAIN}\n"
                f"log_level = {self.log_level}\n"
                f"{self.extra_config}"
                f"[listener smtp]\nprotocol = smtp\n"
                f"address = 127.0.0.1:{self.smtp_port}\n"
                f"[listener lmtp]\nprotocol = lmtp\n"
                f"address = 127.0.0.1:{self.lmtp_port}\n")

    def _write_users(self):
        """Writes the users file directly ({PLAIN}, the documented
        passwd-file format): 'user add' would hash 100 passwords."""
        with open(os.path.join(self.data, "users"), "w") as f:
            for address in self.addresses:
                f.write(f"{address}:{{PLAIN}}{PASSWORD}::::::\n")

    def _wait_ready(self, timeout):
        """Waits for event=ready in the log or, when the log level hides
        it, for both ports to accept."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if "event=ready" in refstack.tail(self.log, 200) or \
                    self._ports_open():
                return
            time.sleep(0.05)
        raise refstack.RefstackError(
            "pushmaild did not become ready:\n" + refstack.tail(self.log))

    def _ports_open(self):
        try:
            for port in (self.smtp_port, self.lmtp_port):
                socket.create_connection(("127.0.0.1", port), 1).close()
        except OSError:
            return False
        return True


class RefStack:
    """Dovecot (LMTP) with Postfix in front of it, under tmpdir."""

    def __init__(self, tmpdir, addresses, postfix_main=None):
        self.dovecot = refstack.Dovecot(tmpdir, addresses, PASSWORD,
                                        max_sessions=200)
        self.postfix = None
        self.tmpdir = tmpdir
        self.postfix_main = postfix_main

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        """Starts Dovecot, then Postfix relaying to its LMTP port.
        Returns (smtp_port, lmtp_port)."""
        lmtp = self.dovecot.start()
        try:
            self.postfix = refstack.Postfix(
                self.tmpdir, ("127.0.0.1", lmtp), [DOMAIN],
                extra_main=self.postfix_main)
            smtp = self.postfix.start()
        except Exception:
            self.stop()
            raise
        return smtp, lmtp

    def stop(self):
        """Stops Postfix, then Dovecot."""
        if self.postfix is not None:
            self.postfix.stop()
        self.dovecot.stop()

    def durability_note(self):
        """How the reference makes a message durable, from its config."""
        return (f"Dovecot mail_fsync = {self.dovecot.setting('mail_fsync')}"
                " (the default); Postfix fsyncs each queue file before "
                "its 250 (always)")


def percentile(values, fraction):
    """The nearest-rank percentile of values (fraction in 0..1)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def median(values):
    """The median of values (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def stop_on_signals():
    """Turns SIGTERM into KeyboardInterrupt so cleanup code runs."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)
