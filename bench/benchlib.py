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
import multiprocessing
import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import ssl
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

    def release_index(self):
        """Asks the running daemon to close its index handles (SIGUSR1):
        each locks its index while open."""
        if self.proc is None or self.proc.poll() is not None:
            return
        before = refstack.tail(self.log, 100000).count(
            "action=release_handles")
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if refstack.tail(self.log, 100000).count(
                    "action=release_handles") > before:
                return
            time.sleep(0.05)

    def index_count(self):
        """Rows in every user's message table (None if unreadable)."""
        self.release_index()
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


# --- IMAP sessions, client fleets and server process figures, for
# idle_memory.py, login_storm.py and select_large.py. ---

IMAP_TIMEOUT = 60.0
IMAP_LINE_MAX = 1 << 20
IMAP_LINES_MAX = 10_000_000


class ImapError(Exception):
    """A refused command, a broken session or a reply out of bounds."""


class PlainStream:
    """An asyncio stream pair behind the small interface TlsStream has."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    async def read(self):
        return await self.reader.read(65536)

    def write(self, data):
        self.writer.write(data)

    async def drain(self):
        await self.writer.drain()

    def reused(self):
        return False


class TlsStream(PlainStream):
    """TLS over an asyncio stream pair through ssl.MemoryBIO, because
    asyncio's own TLS cannot resume a session (it takes no session=)."""

    def __init__(self, reader, writer, ctx, session=None):
        super().__init__(reader, writer)
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, session=session)

    async def handshake(self):
        for _ in range(50):
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._fill():
                    raise ImapError("closed during the TLS handshake")
        else:
            raise ImapError("TLS handshake did not finish")
        await self._flush()

    async def _flush(self):
        data = self.out.read()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def _fill(self):
        data = await self.reader.read(65536)
        if not data:
            self.inc.write_eof()
            return False
        self.inc.write(data)
        return True

    async def read(self):
        for _ in range(1000):
            try:
                return self.obj.read(65536)
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._fill():
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""
        raise ImapError("no TLS record completed")

    def write(self, data):
        self.obj.write(data)
        self.writer.write(self.out.read())

    def reused(self):
        return self.obj.session_reused


def client_tls_context():
    """A client context that accepts the benchmark's self-signed
    certificates (loopback only)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ImapClient:
    """One IMAP session: tagged commands, untagged lines counted, IDLE."""

    def __init__(self, stream):
        self.stream = stream
        self.buf = bytearray()
        self.seq = 0
        self.exists = None

    @classmethod
    async def connect(cls, port, ctx=None, session=None,
                      timeout=IMAP_TIMEOUT):
        """Connects to 127.0.0.1:port (TLS from the first byte when ctx
        is given, resuming session if given) and reads the greeting."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), timeout)
        stream = PlainStream(reader, writer)
        try:
            if ctx is not None:
                stream = TlsStream(reader, writer, ctx, session)
                await asyncio.wait_for(stream.handshake(), timeout)
            client = cls(stream)
            line = await client.readline(timeout)
        except BaseException:
            writer.transport.abort()
            raise
        if not line.startswith(b"* OK"):
            client.abort()
            raise ImapError(f"greeting {line[:80]!r}")
        return client

    def session(self):
        """The TLS session to resume next time (None for plaintext)."""
        obj = getattr(self.stream, "obj", None)
        return obj.session if obj is not None else None

    async def readline(self, timeout=IMAP_TIMEOUT):
        """One response line without its CRLF. A literal at the end of a
        line is read and kept in the line."""
        deadline = time.monotonic() + timeout
        want = 0
        while True:
            i = self.buf.find(b"\r\n", want)
            if i >= 0:
                m = re.search(rb"\{(\d+)\+?\}$", self.buf[:i])
                if m is None:
                    line = bytes(self.buf[:i])
                    del self.buf[:i + 2]
                    return line
                want = i + 2 + int(m.group(1))
                if len(self.buf) >= want:
                    continue
            if len(self.buf) > IMAP_LINE_MAX and want < len(self.buf):
                raise ImapError("response line too long")
            left = deadline - time.monotonic()
            if left <= 0:
                raise ImapError("timeout waiting for a response")
            data = await asyncio.wait_for(self.stream.read(), left)
            if not data:
                raise ImapError("connection closed")
            self.buf += data

    async def send(self, line):
        self.stream.write(line.encode() + b"\r\n")
        await self.stream.drain()

    async def command(self, text, timeout=IMAP_TIMEOUT):
        """Sends 'tag text' and reads to the tagged reply. Returns the
        number of untagged lines; raises ImapError unless it is OK."""
        self.seq += 1
        tag = f"b{self.seq}".encode()
        await self.send(f"{tag.decode()} {text}")
        for count in range(IMAP_LINES_MAX):
            line = await self.readline(timeout)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise ImapError(f"{text.split()[0]}: {line[:120]!r}")
                return count
            self._note(line)
        raise ImapError("too many response lines")

    async def command_bulk(self, text, timeout=IMAP_TIMEOUT):
        """Like command(), for replies of many lines: scans the raw bytes
        for the tagged line instead of splitting lines in Python.
        Returns the bytes received."""
        self.seq += 1
        tag = f"\r\nb{self.seq} ".encode()
        await self.send(f"b{self.seq} {text}")
        deadline = time.monotonic() + timeout
        data = bytearray(b"\r\n" + self.buf)
        self.buf.clear()
        start = 0
        while True:
            i = data.find(tag, start)
            if i >= 0 and data.find(b"\r\n", i + 2) >= 0:
                end = data.find(b"\r\n", i + 2)
                if data[i + len(tag):i + len(tag) + 2] != b"OK":
                    raise ImapError(f"{text.split()[0]}: "
                                    f"{bytes(data[i:end])!r}")
                self.buf += data[end + 2:]
                return end - 2
            start = max(0, len(data) - len(tag))
            left = deadline - time.monotonic()
            if left <= 0:
                raise ImapError("timeout waiting for a bulk response")
            chunk = await asyncio.wait_for(self.stream.read(), left)
            if not chunk:
                raise ImapError("connection closed")
            data += chunk

    def _note(self, line):
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            self.exists = int(m.group(1))

    async def login(self, user, password):
        await self.command(f'LOGIN "{user}" "{password}"')

    async def idle(self, timeout=IMAP_TIMEOUT):
        """Starts IDLE and returns once the server said '+'."""
        self.seq += 1
        self.idle_tag = f"b{self.seq}".encode()
        await self.send(f"{self.idle_tag.decode()} IDLE")
        for _ in range(1000):
            line = await self.readline(timeout)
            if line.startswith(b"+"):
                return
            if line.startswith(self.idle_tag):
                raise ImapError(f"IDLE: {line[:120]!r}")
            self._note(line)
        raise ImapError("no continuation for IDLE")

    async def wait_exists(self, timeout):
        """In IDLE: reads until the next '* n EXISTS'; returns n."""
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            line = await self.readline(max(0.0, deadline - time.monotonic()))
            m = re.match(rb"\* (\d+) EXISTS", line)
            if m:
                self.exists = int(m.group(1))
                return self.exists
        raise ImapError("no EXISTS")

    def abort(self):
        """Drops the connection at once (RST), as a network blip would
        for the client."""
        self.stream.writer.transport.abort()

    async def logout(self):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.command("LOGOUT"), 5)
        self.abort()


def raise_nofile():
    """Raises this process's open file limit to its hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def imap_session_to_idle(port, user, password, ctx=None,
                               session=None, timeout=IMAP_TIMEOUT):
    """Connect, LOGIN, SELECT INBOX, IDLE. Returns the client."""
    client = await ImapClient.connect(port, ctx, session, timeout)
    try:
        await client.login(user, password)
        await client.command("SELECT INBOX", timeout)
        await client.idle(timeout)
    except BaseException:
        client.abort()
        raise
    return client


async def imap_session_login(port, user, password, ctx=None, session=None,
                             timeout=IMAP_TIMEOUT):
    """Connect and LOGIN, nothing else. Returns the client."""
    client = await ImapClient.connect(port, ctx, session, timeout)
    try:
        await client.login(user, password)
    except BaseException:
        client.abort()
        raise
    return client


class _FleetWorker:
    """The body of one fleet process: holds its users' sessions."""

    def __init__(self, port, users, password, tls):
        self.port = port
        self.users = users
        self.password = password
        self.ctx = client_tls_context() if tls else None
        self.clients = {}
        self.sessions = {}

    async def _one(self, user, sem, times, errors, reused, login_only):
        start = imap_session_login if login_only else imap_session_to_idle
        try:
            if sem is not None:
                async with sem:
                    c = await start(self.port, user, self.password,
                                    self.ctx, self.sessions.get(user))
            else:
                c = await start(self.port, user, self.password, self.ctx,
                                self.sessions.get(user))
        except (ImapError, OSError, asyncio.TimeoutError, ssl.SSLError) as e:
            errors.append(f"{user}: {e!r}"[:200])
            return
        times.append(time.monotonic())
        reused.append(c.stream.reused())
        self.clients[user] = c
        if self.ctx is not None:
            self.sessions[user] = c.session()

    async def open(self, concurrency, start_at=None, login_only=False):
        """Opens every user's session that is not open, concurrency at a
        time (None: all at once, from start_at, a monotonic time); with
        login_only, sessions stop after LOGIN."""
        if start_at is not None:
            await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        sem = asyncio.Semaphore(concurrency) if concurrency else None
        times, errors, reused = [], [], []
        t0 = time.monotonic()
        await asyncio.gather(*(self._one(u, sem, times, errors, reused,
                                         login_only)
                               for u in self.users
                               if u not in self.clients))
        return {"t0": t0, "times": times, "errors": errors,
                "reused": sum(reused), "open": len(self.clients)}

    def drop(self):
        for c in self.clients.values():
            c.abort()
        n = len(self.clients)
        self.clients.clear()
        return {"dropped": n}

    async def serve(self, conn):
        loop = asyncio.get_running_loop()
        for _ in range(1000):
            cmd, arg = await loop.run_in_executor(None, conn.recv)
            if cmd == "open":
                conn.send(await self.open(*arg))
            elif cmd == "drop":
                conn.send(self.drop())
                await asyncio.sleep(0)
            else:
                for c in self.clients.values():
                    c.abort()
                conn.send({})
                return


def _fleet_main(conn, port, users, password, tls):
    raise_nofile()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker = _FleetWorker(port, users, password, tls)
    asyncio.run(worker.serve(conn))


class Fleet:
    """IMAP sessions spread over several client processes (one process
    may hold at most 20,000 descriptors). Each user gets one session:
    LOGIN, SELECT INBOX, IDLE."""

    def __init__(self, port, users, password, tls=False, processes=4):
        ctx = multiprocessing.get_context("fork")
        self.procs, self.conns = [], []
        for i in range(processes):
            mine = users[i::processes]
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_fleet_main,
                            args=(child, port, mine, password, tls))
            p.start()
            self.procs.append(p)
            self.conns.append(parent)

    def _all(self, cmd, arg=(), timeout=600):
        for c in self.conns:
            c.send((cmd, arg))
        out = []
        for c in self.conns:
            if not c.poll(timeout):
                raise ImapError(f"fleet process did not answer {cmd}")
            out.append(c.recv())
        return out

    def open(self, concurrency=100, start_at=None, timeout=600,
             login_only=False):
        """Opens the sessions; returns a merged result: times (monotonic
        time each session reached IDLE, or logged in with login_only),
        errors, reused, open."""
        merged = {"times": [], "errors": [], "reused": 0, "open": 0}
        for r in self._all("open", (concurrency, start_at, login_only),
                           timeout):
            merged["times"] += r["times"]
            merged["errors"] += r["errors"]
            merged["reused"] += r["reused"]
            merged["open"] += r["open"]
        return merged

    def drop(self):
        """Drops every session at once (RST)."""
        return sum(r["dropped"] for r in self._all("drop"))

    def close(self):
        with contextlib.suppress(Exception):
            self._all("exit", timeout=60)
        for p in self.procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join(5)


def process_tree(pid):
    """pid and all its descendants, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def pss_kib(pids):
    """Sum of PSS (KiB) over pids, from /proc/PID/smaps_rollup; processes
    that are gone are skipped."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
    return total


def cpu_times(pids):
    """{(pid, starttime): (utime + stime, cutime + cstime) seconds}."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            own = (int(fields[11]) + int(fields[12])) / tick
            reaped = (int(fields[13]) + int(fields[14])) / tick
            out[(pid, int(fields[19]))] = (own, reaped)
    return out


def cpu_delta(before, after, root):
    """Server CPU seconds between two cpu_times() snapshots of a process
    tree whose children are all reaped by root (the Dovecot master forks
    every service process): processes that ended in between count
    through root's reaped-children time, less what they had used
    before."""
    total = 0.0
    for key, (own, reaped) in after.items():
        total += own - before.get(key, (0.0, 0.0))[0]
        if key[0] == root:
            total += reaped - before.get(key, (0.0, 0.0))[1]
    for key, (own, _) in before.items():
        if key not in after and key[0] != root:
            total -= own
    return total


class PushmaildImap(Pushmaild):
    """Pushmaild with IMAP (plaintext) and IMAPS (TLS from the first
    byte) listeners besides SMTP and LMTP, in imap_port and imaps_port.
    tls_cert/tls_key default to the self-signed pair pushmaild makes.
    ready_timeout covers the start-up recovery of many mailboxes."""

    def __init__(self, binary, tmpdir, addresses, tls_cert=None,
                 tls_key=None, extra_config="", log_level="info",
                 ready_timeout=600):
        if tls_cert:
            extra_config += f"tls_cert = {tls_cert}\ntls_key = {tls_key}\n"
        super().__init__(binary, tmpdir, addresses, extra_config,
                         log_level)
        self.ready_timeout = ready_timeout
        self.imap_port = self.imaps_port = None

    def start(self):
        self.imap_port = refstack.free_port()
        self.imaps_port = refstack.free_port()
        return super().start()

    def pid(self):
        return self.proc.pid

    def _config(self):
        return (super()._config() +
                f"[listener imap]\nprotocol = imap\n"
                f"address = 127.0.0.1:{self.imap_port}\n"
                f"[listener imaps]\nprotocol = imap\n"
                f"address = 127.0.0.1:{self.imaps_port}\ntls = implicit\n")

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + max(timeout, self.ready_timeout)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if "event=ready" in refstack.tail(self.log, 50):
                return
            time.sleep(0.1)
        raise refstack.RefstackError(
            "pushmaild did not become ready:\n" + refstack.tail(self.log))

    def _ports_open(self):
        return False
