"""Fixtures that run the real pushmaild on 127.0.0.1 with ephemeral ports.

Each test gets a fresh data directory and config; the daemon is stopped with
SIGTERM at the end and must exit cleanly, with no sanitizer report in its log.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PUSHMAILD = os.environ.get("PUSHMAILD", os.path.join(ROOT, "build-asan",
                                                     "pushmaild"))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:",
                   "ERROR: LeakSanitizer")

DEFAULT_LISTENERS = {
    "smtp": ("smtp", "starttls"),
    "submission": ("submission", "starttls"),
    "submissions": ("submission", "implicit"),
    "lmtp": ("lmtp", "none"),
    "imap": ("imap", "starttls"),
    "imaps": ("imap", "implicit"),
}


class Daemon:
    """One pushmaild process with its own data directory."""

    def __init__(self, tmpdir, extra="", listeners=None):
        self.dir = str(tmpdir)
        self.data = os.path.join(self.dir, "data")
        self.conf = os.path.join(self.dir, "pushmaild.conf")
        self.log_path = os.path.join(self.dir, "pushmaild.log")
        self.listeners = listeners or DEFAULT_LISTENERS
        self.ports = {}
        self.proc = None
        self.write_config(extra)

    def write_config(self, extra=""):
        lines = [
            f"data_dir = {self.data}",
            "hostname = mx.test.example",
            "log_level = debug",
            "auth_allow_plaintext = no",
            extra,
        ]
        for name, (proto, tls) in self.listeners.items():
            lines += [f"[listener {name}]", f"protocol = {proto}",
                      "address = 127.0.0.1:0", f"tls = {tls}"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def cli(self, *args, stdin=None, check=True):
        """Runs a pushmaild subcommand against this daemon's config."""
        r = subprocess.run([PUSHMAILD, "-c", self.conf, *args],
                           input=stdin, capture_output=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"pushmaild {args}: {r.returncode}: "
                                 f"{r.stderr.decode(errors='replace')}")
        return r

    def add_user(self, name, password="secret"):
        self.cli("user", "add", name, stdin=password.encode())

    def start(self, wrapper=(), env=None):
        """Starts the daemon (under wrapper, e.g. strace, if given)."""
        pos = len(self.log()) if os.path.exists(self.log_path) else 0
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([*wrapper, PUSHMAILD, "-c", self.conf,
                                      "serve"],
                                     stdout=self.logf, stderr=self.logf,
                                     env={**os.environ, **(env or {})})
        text = self.wait_log("event=ready", start=pos)
        for m in re.finditer(r"event=listen name=(\S+) .* port=(\d+)",
                             text[pos:]):
            self.ports[m.group(1)] = int(m.group(2))
        return self

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=20, start=0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.log()
            if re.search(pattern, text[start:]):
                return text
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(f"pushmaild exited:\n{text}")
            time.sleep(0.02)
        raise AssertionError(f"no {pattern!r} in log:\n{self.log()}")

    def release_index(self):
        """Asks a running daemon to close its index handles (SIGUSR1):
        each locks its index while open, and the test is about to read one
        with sqlite3. A no-op when the daemon is not running."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pos = len(self.log())
        self.proc.send_signal(signal.SIGUSR1)
        self.wait_log("event=store action=release_handles", start=pos)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return None
        if sig:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.logf.close()
        return rc

    def check_clean_exit(self, rc):
        text = self.log()
        for mark in SANITIZER_MARKS:
            assert mark not in text, text
        assert rc == 0, f"exit status {rc}:\n{text[-4000:]}"

    def user_dir(self, user):
        return os.path.join(self.data, "mail", user)

    def messages(self, user, sub="new"):
        """The message files in a user's INBOX new/ (or cur/)."""
        d = os.path.join(self.user_dir(user), sub)
        if not os.path.isdir(d):
            return []
        return sorted(os.path.join(d, n) for n in os.listdir(d))


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path)
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"port {port} not open")


sys.path.insert(0, HERE)
