"""Small helpers for driving SMTP by hand where smtplib is too polite."""
import socket
import ssl
import time


class RawSMTP:
    """A line-level SMTP/LMTP client over a plain or TLS socket."""

    def __init__(self, port, host="127.0.0.1", tls=False, timeout=10):
        sock = socket.create_connection((host, port), timeout)
        if tls:
            sock = insecure_context().wrap_socket(sock)
        self.sock = sock
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def reply(self):
        """Reads one reply; returns (code, [text lines])."""
        lines = []
        while True:
            line = self.line()
            lines.append(line[4:])
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def starttls(self):
        code, _ = self.cmd("STARTTLS")
        assert code == 220, code
        self.sock = insecure_context().wrap_socket(self.sock)
        self.buf = b""

    def closed(self, timeout=5):
        """True when the server closes the connection within timeout."""
        self.sock.settimeout(timeout)
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, socket.timeout, ssl.SSLError):
            return False
        return False

    def close(self):
        self.sock.close()


def insecure_context():
    """A client TLS context for the daemon's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def message(subject="test", body="Hello.\r\n", sender="sender@remote.example",
            to="alice@example.org", extra=""):
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{time.time()}@remote.example>\r\n{extra}\r\n"
            f"{body}")
