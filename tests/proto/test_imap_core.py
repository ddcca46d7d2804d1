"""IMAP session core: greeting, capabilities, STARTTLS and implicit TLS,
LOGIN and AUTHENTICATE PLAIN, ENABLE, ID, NAMESPACE, literals, pipelining
and the limits on bad input, against the real daemon.
"""
import base64
import imaplib
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from conftest import Daemon

LISTENERS = {
    "imap": ("imap", "starttls"),
    "imaps": ("imap", "implicit"),
    "imapplain": ("imap", "none"),
}
USER = "alice@test.example"


def make_daemon(tmp_path, extra=""):
    d = Daemon(tmp_path, extra=extra, listeners=LISTENERS)
    d.add_user(USER, "secret")
    return d.start()


@pytest.fixture
def imapd(tmp_path):
    d = make_daemon(tmp_path)
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


@pytest.fixture
def imapd_notls(tmp_path):
    d = make_daemon(tmp_path, "imap_plaintext_auth = no")
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Raw:
    """A scripted IMAP client on a plain socket."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.buf = b""
        self.greeting = self.line()

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def until(self, tag):
        """Lines up to and including the one tagged tag."""
        lines = []
        while True:
            lines.append(self.line())
            if lines[-1].startswith(tag + " "):
                return lines

    def closed(self):
        """True once the server has closed (after any pending lines)."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        self.sock.close()


def test_greeting_and_capability_on_loopback(imapd):
    m = imaplib.IMAP4("127.0.0.1", imapd.ports["imap"])
    assert m.welcome.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2")
    caps = m.capabilities
    for cap in ("IMAP4REV1", "IMAP4REV2", "LITERAL+", "SASL-IR", "ENABLE",
                "ID", "NAMESPACE", "STARTTLS", "AUTH=PLAIN"):
        assert cap in caps
    assert "LOGINDISABLED" not in caps
    assert "IDLE" in caps
    typ, _ = m.noop()
    assert typ == "OK"
    typ, data = m.login(USER, "secret")
    assert typ == "OK"
    assert b"[CAPABILITY IMAP4rev1" in data[0]
    assert m.logout()[0] == "BYE"
    imapd.wait_log(r"proto=imap event=auth result=ok user=" + USER)
    imapd.wait_log(r"proto=imap event=disconnect reason=logout")
    assert "secret" not in imapd.log()


def test_starttls_changes_capabilities(imapd):
    m = imaplib.IMAP4("127.0.0.1", imapd.ports["imap"])
    assert m.starttls(ssl_context=tls_context())[0] == "OK"
    typ, data = m.capability()
    caps = data[0].split()
    assert b"STARTTLS" not in caps and b"AUTH=PLAIN" in caps
    assert m.login(USER, "secret")[0] == "OK"
    m.logout()
    imapd.wait_log(r"proto=imap event=tls action=starttls")


def test_implicit_tls_authenticate_plain(imapd):
    m = imaplib.IMAP4_SSL("127.0.0.1", imapd.ports["imaps"],
                          ssl_context=tls_context())
    assert "STARTTLS" not in m.capabilities
    typ, _ = m.authenticate("PLAIN",
                            lambda _: f"\0{USER}\0secret".encode())
    assert typ == "OK"
    assert m.state == "AUTH"
    m.logout()


def test_login_failure(imapd):
    m = imaplib.IMAP4("127.0.0.1", imapd.ports["imap"])
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        m.login(USER, "wrong")
    assert m.login(USER, "secret")[0] == "OK"
    m.logout()
    imapd.wait_log(r"proto=imap event=auth result=fail")


def test_plaintext_refused_when_configured(imapd_notls):
    port = imapd_notls.ports["imapplain"]
    m = imaplib.IMAP4("127.0.0.1", port)
    assert "LOGINDISABLED" in m.capabilities
    assert "AUTH=PLAIN" not in m.capabilities
    r = Raw(port)
    r.send(b"a LOGIN alice secret\r\nb AUTHENTICATE PLAIN\r\n")
    assert r.until("a")[-1].startswith("a NO [PRIVACYREQUIRED]")
    assert r.until("b")[-1].startswith("b NO [PRIVACYREQUIRED]")
    r.close()
    m.logout()
    # Under TLS the same policy lets the login through.
    m = imaplib.IMAP4("127.0.0.1", imapd_notls.ports["imap"])
    assert "LOGINDISABLED" in m.capabilities
    m.starttls(ssl_context=tls_context())
    caps = m.capability()[1][0].split()
    assert b"LOGINDISABLED" not in caps
    assert m.login(USER, "secret")[0] == "OK"
    m.logout()


def test_authenticate_continuation_and_cancel(imapd):
    r = Raw(imapd.ports["imapplain"])
    r.send(b"a AUTHENTICATE PLAIN\r\n")
    assert r.line() == "+ "
    r.send(b"*\r\n")
    assert r.line().startswith("a BAD")
    r.send(b"b AUTHENTICATE PLAIN\r\n")
    assert r.line() == "+ "
    r.send(b"not base64!\r\n")
    assert r.line().startswith("b BAD")
    r.send(b"c AUTHENTICATE CRAM-MD5\r\n")
    assert r.line().startswith("c NO")
    ir = base64.b64encode(f"\0{USER}\0secret".encode())
    r.send(b"d AUTHENTICATE PLAIN\r\n")
    assert r.line() == "+ "
    r.send(ir + b"\r\n")
    assert r.line().startswith("d OK [CAPABILITY ")
    r.close()


def test_sasl_ir_and_state_errors(imapd):
    r = Raw(imapd.ports["imapplain"])
    ir = base64.b64encode(f"\0{USER}\0secret".encode())
    r.send(b"a SELECT INBOX\r\nb ENABLE QRESYNC\r\nc NAMESPACE\r\n"
           b"d FOOBAR\r\ne AUTHENTICATE PLAIN " + ir + b"\r\n")
    assert r.line().startswith("a BAD")
    assert r.line().startswith("b BAD")
    assert r.line().startswith("c BAD")
    assert r.line().startswith("d BAD")
    assert r.line().startswith("e OK [CAPABILITY ")
    r.send(b"f GETQUOTA \"\"\r\ng FETCH 1 FLAGS\r\nh LOGIN a b\r\n"
           b"i STARTTLS\r\nj GETQUOTAROOT INBOX\r\nk LOGOUT\r\n")
    assert r.line() == "f NO [CANNOT] Not available yet"  # QUOTA: later
    assert r.line().startswith("g BAD")
    assert r.line().startswith("h BAD")
    assert r.line().startswith("i BAD")
    assert r.line() == "j NO [CANNOT] Not available yet"
    assert r.until("k") == ["* BYE Logging out", "k OK LOGOUT completed"]
    assert r.closed()


def test_id_enable_namespace(imapd):
    m = imaplib.IMAP4("127.0.0.1", imapd.ports["imap"])
    typ, data = m.xatom("ID", '("name" "pytest")')
    assert typ == "OK"
    assert b'"name" "pushmail"' in m.untagged_responses["ID"][0]
    m.login(USER, "secret")
    typ, _ = m.xatom("ENABLE", "QRESYNC UTF8=ACCEPT FOO")
    assert typ == "OK"
    assert m.untagged_responses.pop("ENABLED") == [b"QRESYNC UTF8=ACCEPT"]
    # Already on: nothing newly enabled (CONDSTORE came with QRESYNC).
    m.xatom("ENABLE", "QRESYNC CONDSTORE")
    assert m.untagged_responses.pop("ENABLED") == [b""]
    typ, data = m.namespace()
    assert typ == "OK" and data[0] == b'(("" "/")) NIL NIL'
    m.logout()


def test_pipelining_and_literals(imapd):
    r = Raw(imapd.ports["imapplain"])
    user = USER.encode()
    # Non-synchronising literals (LITERAL+) need no continuation.
    r.send(b"a NOOP\r\nb CAPABILITY\r\nc LOGIN {%d+}\r\n%s {6+}\r\nsecret"
           b"\r\nd NOOP\r\n" % (len(user), user))
    assert r.line() == "a OK NOOP completed"
    assert r.line().startswith("* CAPABILITY ")
    assert r.line() == "b OK CAPABILITY completed"
    assert r.line().startswith("c OK [CAPABILITY ")
    assert r.line() == "d OK NOOP completed"
    r.close()
    # Synchronising literals wait for "+ ".
    r = Raw(imapd.ports["imapplain"])
    r.send(b"a LOGIN {%d}\r\n" % len(user))
    assert r.line().startswith("+ ")
    r.send(user + b" {6}\r\n")
    assert r.line().startswith("+ ")
    r.send(b"secret\r\n")
    assert r.line().startswith("a OK [CAPABILITY ")
    r.close()


def test_literal_limit_before_login(imapd):
    r = Raw(imapd.ports["imapplain"])
    # A synchronising literal over 8 KiB is refused without "+ ".
    r.send(b"a LOGIN {9000}\r\n")
    assert r.line().startswith("a BAD [TOOBIG]")
    r.send(b"b NOOP\r\n")
    assert r.line() == "b OK NOOP completed"
    # A non-synchronising one over 8 KiB cannot be skipped: BYE.
    r.send(b"c LOGIN {9000+}\r\n")
    assert r.line().startswith("c BAD [TOOBIG]")
    assert r.line().startswith("* BYE")
    assert r.closed()
    r.close()


def test_literal_over_limit_after_login(imapd):
    r = Raw(imapd.ports["imapplain"])
    r.send(b"a LOGIN %s secret\r\n" % USER.encode())
    assert r.line().startswith("a OK")
    r.send(b"b APPEND INBOX {100000000}\r\n")
    assert r.line().startswith("b NO [TOOBIG]")
    r.send(b"c NOOP\r\n")
    assert r.line() == "c OK NOOP completed"
    r.close()


def test_line_too_long_and_untagged_bad(imapd):
    r = Raw(imapd.ports["imapplain"])
    r.send(b"a NOOP " + b"x" * 70000 + b"\r\n")
    assert r.line().startswith("a BAD")
    r.send(b"b NOOP\r\n")
    assert r.line() == "b OK NOOP completed"
    r.send(b" x\r\n")
    assert r.line().startswith("* BAD")
    r.send(b"c NOOP\r\n")
    assert r.line() == "c OK NOOP completed"
    r.close()


def test_ten_bad_commands_close(imapd):
    r = Raw(imapd.ports["imapplain"])
    r.send(b"".join(b"t%d BOGUS\r\n" % i for i in range(5)))
    r.send(b"ok NOOP\r\n")
    assert len(r.until("ok")) == 6
    # Only consecutive errors count: the NOOP started the count afresh.
    r.send(b"".join(b"u%d BOGUS\r\n" % i for i in range(12)))
    lines = [r.line() for _ in range(11)]
    assert all(l.startswith("u%d BAD" % i) for i, l in enumerate(lines[:10]))
    assert lines[10].startswith("* BYE")
    assert r.closed()
    r.close()
    imapd.wait_log(r"proto=imap event=cmd error=too_many_errors")


def test_curl_logs_in(imapd):
    if shutil.which("curl") is None:
        pytest.skip("no curl")
    port = imapd.ports["imapplain"]
    p = subprocess.run(["curl", "-sv", f"imap://127.0.0.1:{port}/",
                        "-u", f"{USER}:secret", "--login-options",
                        "AUTH=PLAIN"], capture_output=True, timeout=30)
    err = p.stderr.decode(errors="replace")
    assert "OK [CAPABILITY" in err and "Logged in" in err
    imapd.wait_log(r"proto=imap event=auth result=ok")


def test_many_idle_sessions_then_shutdown(imapd):
    conns = [Raw(imapd.ports["imapplain"]) for _ in range(20)]
    for i, r in enumerate(conns[:10]):
        r.send(b"a LOGIN %s secret\r\n" % USER.encode())
        assert r.line().startswith("a OK")
    time.sleep(0.2)
    imapd.check_clean_exit(imapd.stop())
    for r in conns:
        r.close()
