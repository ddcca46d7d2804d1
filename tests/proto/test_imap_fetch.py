"""IMAP FETCH and UID FETCH against the real daemon: cached items (FLAGS,
INTERNALDATE, RFC822.SIZE, ENVELOPE, BODYSTRUCTURE), BODY[section] with
partials, HEADER.FIELDS, a multipart message sent over SMTP, a large
message streamed through back-pressure, and real clients (curl, fetchmail).
"""
import imaplib
import os
import re
import shutil
import smtplib
import subprocess

import pytest

from conftest import Daemon

USER = "alice@example.org"
PW = "secret"

MULTI = ("From: Sender Name <sender@remote.example>\r\n"
         "To: alice@example.org\r\n"
         "Subject: multi part\r\n"
         "Message-ID: <m1@remote.example>\r\n"
         "MIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=XX\r\n"
         "\r\n"
         "preamble\r\n"
         "--XX\r\n"
         "Content-Type: text/plain; charset=us-ascii\r\n"
         "\r\n"
         "first part body\r\n"
         "--XX\r\n"
         "Content-Type: text/html\r\n"
         "\r\n"
         "<p>second</p>\r\n"
         "--XX--\r\n")


@pytest.fixture
def imapd(tmp_path):
    d = Daemon(tmp_path)
    d.add_user(USER, PW)
    d.start()
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


def send(d, data, rcpt=USER):
    s = smtplib.SMTP("127.0.0.1", d.ports["smtp"], timeout=10)
    s.sendmail("sender@remote.example", [rcpt], data.encode())
    s.quit()


def plain(subject="hello"):
    return (f"From: a@remote.example\r\nTo: {USER}\r\nSubject: {subject}\r\n"
            "X-Other: yes\r\n\r\nThis is the body text.\r\n")


def login(d):
    m = imaplib.IMAP4("127.0.0.1", d.ports["imap"])
    m.login(USER, PW)
    return m


def files(d):
    out = []
    for sub in ("new", "cur"):
        p = os.path.join(d.user_dir(USER), sub)
        out += [os.path.join(p, f) for f in sorted(os.listdir(p))]
    return out


def test_fetch_items(imapd):
    send(imapd, plain("one"))
    send(imapd, plain("two"))
    m = login(imapd)
    m.select("INBOX")
    typ, data = m.fetch("1:2", "(UID FLAGS RFC822.SIZE INTERNALDATE)")
    assert typ == "OK"
    assert len(data) == 2
    sizes = [os.path.getsize(f) for f in files(imapd)]
    for i, line in enumerate(data):
        text = line.decode()
        assert text.startswith(f"{i + 1} (UID {i + 1} ")
        assert "FLAGS (\\Recent)" in text
        assert f"RFC822.SIZE {sizes[i]}" in text
        assert re.search(r'INTERNALDATE "\d\d-[A-Z][a-z]{2}-\d{4} '
                         r'\d\d:\d\d:\d\d [+-]\d{4}"', text)
    typ, data = m.fetch("*", "ENVELOPE")
    assert b'"two"' in data[0]
    m.logout()


def test_uid_fetch(imapd):
    for i in range(3):
        send(imapd, plain(f"m{i}"))
    m = login(imapd)
    m.select("INBOX")
    typ, data = m.uid("FETCH", "2:*", "(FLAGS)")
    assert typ == "OK"
    assert [x.decode().split(" (")[0] for x in data] == ["2", "3"]
    assert all("UID" in x.decode() for x in data)
    typ, data = m.uid("FETCH", "10:20", "FLAGS")
    assert typ == "OK" and data == [None]
    typ, data = m.uid("FETCH", "*", "FLAGS")
    assert b"UID 3" in data[0]
    m.logout()


def test_bad_requests(imapd):
    send(imapd, plain())
    m = login(imapd)
    m.select("INBOX")
    for args in (("5", "FLAGS"), ("1", "NOSUCH"), ("x", "FLAGS"),
                 ("1", "BINARY[1.MIME]")):
        with pytest.raises(imaplib.IMAP4.error):
            m.fetch(*args)
    assert m.noop()[0] == "OK"
    m.logout()


def test_sections(imapd):
    send(imapd, plain("sect"))
    m = login(imapd)
    m.select("INBOX")
    raw = open(files(imapd)[0], "rb").read()
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (Subject FROM)])")
    assert typ == "OK"
    assert data[0][0].endswith(b"BODY[HEADER.FIELDS (Subject FROM)] {41}")
    assert data[0][1] == (b"From: a@remote.example\r\nSubject: sect\r\n"
                          b"\r\n")
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS.NOT (Subject)])")
    assert b"Subject" not in data[0][1] and b"X-Other: yes" in data[0][1]
    typ, data = m.fetch("1", "(BODY.PEEK[TEXT]<0.10>)")
    assert b"BODY[TEXT]<0>" in data[0][0]
    assert data[0][1] == b"This is th"
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == raw
    typ, data = m.fetch("1", "(BODY.PEEK[1])")
    assert data[0][1] == b"This is the body text.\r\n"
    typ, data = m.fetch("1", "(RFC822.HEADER)")
    assert raw.startswith(data[0][1]) and data[0][1].endswith(b"\r\n\r\n")
    typ, data = m.fetch("1", "(BODY.PEEK[]<5000.10>)")
    assert data[0][1] == b""
    m.logout()


def test_multipart(imapd):
    send(imapd, MULTI)
    m = login(imapd)
    m.select("INBOX")
    typ, data = m.fetch("1", "(ENVELOPE BODYSTRUCTURE BODY)")
    text = data[0].decode()
    assert '"multi part"' in text
    assert '(("Sender Name" NIL "sender" "remote.example"))' in text
    assert '<m1@remote.example>' in text
    assert 'BODYSTRUCTURE (("TEXT" "PLAIN"' in text.upper()
    assert '"MIXED"' in text.upper()
    typ, data = m.fetch("1", "(BODY.PEEK[1] BODY.PEEK[2.MIME])")
    assert data[0][1] == b"first part body"
    assert data[1][1] == b"Content-Type: text/html\r\n\r\n"
    typ, data = m.fetch("1", "(BODY[2])")
    assert data[0][1] == b"<p>second</p>"
    m.logout()


def test_large_message(imapd):
    body = ("x" * 998 + "\r\n") * 12000
    send(imapd, plain("big")[:-len("This is the body text.\r\n")] + body)
    send(imapd, plain("small"))
    m = login(imapd)
    m.select("INBOX")
    typ, data = m.fetch("1:2", "(BODY.PEEK[TEXT])")
    assert typ == "OK"
    assert data[0][1] == body.encode()
    assert data[2][1] == b"This is the body text.\r\n"
    m.logout()


def test_curl(imapd):
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    send(imapd, plain("via curl"))
    raw = open(files(imapd)[0], "rb").read()
    out = subprocess.run(
        ["curl", "-s", f"imap://127.0.0.1:{imapd.ports['imap']}/INBOX;UID=1",
         "-u", f"{USER}:{PW}"], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == raw


def test_fetchmail(imapd, tmp_path):
    """fetchmail reads with RFC822.SIZE, RFC822.HEADER and BODY.PEEK[TEXT],
    then marks each message with STORE +FLAGS (\\Seen)."""
    if shutil.which("fetchmail") is None:
        pytest.skip("fetchmail not installed")
    send(imapd, plain("via fetchmail"))
    send(imapd, MULTI)
    raw = open(files(imapd)[0], "rb").read()
    rc = tmp_path / "fetchmailrc"
    rc.write_text(f"poll 127.0.0.1 protocol IMAP port {imapd.ports['imap']} "
                  f"user \"{USER}\" password \"{PW}\" sslproto '' "
                  f"mda \"cat >> {tmp_path}/out.mbox\"\n")
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path))
    out = subprocess.run(
        ["fetchmail", "-f", str(rc), "--keep", "--nosslcertck", "-v",
         "--fetchall", "--pidfile", str(tmp_path / "pid")],
        capture_output=True, timeout=60, env=env)
    mbox = (tmp_path / "out.mbox").read_bytes()
    # fetchmail writes the header and body it fetched, LF line ends.
    body = raw.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")
    assert b"Subject: via fetchmail" in mbox and body in mbox
    assert out.returncode == 0, out.stdout + out.stderr
    assert b"<p>second</p>" in mbox


class Raw:
    """A scripted IMAP client on a plain socket, logged in."""

    def __init__(self, port):
        import socket
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.buf = b""
        assert self.line().startswith("* OK ")
        self.cmd("l", f"LOGIN {USER} {PW}")

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def cmd(self, tag, text):
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        lines = []
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                return lines, line
            lines.append(line)


def test_body_sets_seen(imapd):
    send(imapd, plain("seen"))
    send(imapd, plain("other"))
    watcher = Raw(imapd.ports["imap"])
    watcher.cmd("s", "SELECT INBOX")
    watcher.sock.sendall(b"i IDLE\r\n")
    assert watcher.line().startswith("+ ")
    m = login(imapd)
    m.select("INBOX")
    typ, data = m.fetch("2", "(BODY.PEEK[TEXT])")
    assert b"FLAGS" not in data[0][0]
    typ, data = m.fetch("1", "(BODY[])")
    assert typ == "OK"
    # The watcher selected first, so \\Recent is its alone.
    assert b"FLAGS (\\Seen)" in data[0][0]
    assert watcher.line() == "* 1 FETCH (FLAGS (\\Seen \\Recent))"
    watcher.sock.sendall(b"DONE\r\n")
    assert watcher.line().startswith("i OK")
    cur = os.listdir(os.path.join(imapd.user_dir(USER), "cur"))
    assert len(cur) == 1 and cur[0].endswith(",U=1,S=%d:2,S" %
                                             len(data[0][1]))
    # The FETCH reported the new flags; no repeat comes unasked.
    typ, data = m.fetch("1:2", "FLAGS")
    assert data == [b"1 (UID 1 FLAGS (\\Seen))", b"2 (UID 2 FLAGS ())"]
    # A second BODY[] changes nothing; EXAMINE never sets \Seen.
    typ, data = m.fetch("1", "(BODY[TEXT])")
    assert typ == "OK"
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("2", "(RFC822)")
    typ, data = m.fetch("2", "FLAGS")
    assert b"\\Seen" not in data[0]
    m.logout()
    typ, status = None, None
    m = login(imapd)
    typ, status = m.status("INBOX", "(UNSEEN)")
    assert b"UNSEEN 1" in status[0]
    m.logout()


def test_disconnect_during_fetch(imapd):
    body = ("y" * 998 + "\r\n") * 6000
    for i in range(3):
        send(imapd, plain(f"big{i}")[:-len("This is the body text.\r\n")] +
             body)
    c = Raw(imapd.ports["imap"])
    c.cmd("s", "SELECT INBOX")
    c.sock.sendall(b"f FETCH 1:* (BODY.PEEK[])\r\n")
    assert c.line().startswith("* 1 FETCH (UID 1 BODY[] {")
    c.sock.close()
    # The server notices within a second and drops the FETCH.
    import time
    time.sleep(1.5)
    m = login(imapd)
    m.select("INBOX")
    typ, data = m.fetch("3", "(RFC822.SIZE)")
    assert typ == "OK"
    m.logout()


def test_header_field_name_as_literal(imapd):
    """RFC 9051 header-list holds astrings: a name may be a literal."""
    send(imapd, plain("lit"))
    c = Raw(imapd.ports["imap"])
    c.cmd("s", "SELECT INBOX")
    c.sock.sendall(b"f FETCH 1 (BODY.PEEK[HEADER.FIELDS (From {7}\r\n")
    assert c.line().startswith("+ ")
    c.sock.sendall(b"Subject)])\r\n")
    head = c.line()
    assert head.startswith("* 1 FETCH (")
    assert head.endswith(" BODY[HEADER.FIELDS (From Subject)] {40}")
    body = c.buf[:40]
    assert body == b"From: a@remote.example\r\nSubject: lit\r\n\r\n"
    c.buf = c.buf[40:]
    assert c.line() == ")"
    assert c.line() == "f OK FETCH completed"
    c.sock.sendall(b"g FETCH 1 (BODY.PEEK[HEADER.FIELDS ({2+}\r\na\nb)])\r\n")
    assert c.line().startswith("g BAD")
    assert c.cmd("h", "NOOP")[1] == "h OK NOOP completed"
