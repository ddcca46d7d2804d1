"""FETCH BINARY (RFC 3516) against the real daemon: base64 and
quoted-printable parts decoded, whole and partial, literal8 (~{n}) only
when the bytes hold NUL, BINARY.SIZE, NO [UNKNOWN-CTE], composite parts
sent as they stand, \\Seen set by BINARY but not by .PEEK or .SIZE, and
APPEND of a literal8 message with NUL bytes fetched back unchanged."""
import base64
import imaplib
import re
import socket

import pytest

from conftest import Daemon

USER = "alice@example.org"
PW = "secret"
BLOB = b"\x00\x01binary\x00data\xff" * 3

MSG = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: parts\r\n"
       b"MIME-Version: 1.0\r\n"
       b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
       b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n"
       b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
       b"caf=C3=A9 =3D=\r\nna=C3=AFve  \r\nline two\r\n"
       b"--XX\r\nContent-Type: application/octet-stream\r\n"
       b"Content-Transfer-Encoding: base64\r\n\r\n"
       + base64.encodebytes(BLOB).replace(b"\n", b"\r\n") +
       b"--XX\r\nContent-Type: application/x-thing\r\n"
       b"Content-Transfer-Encoding: x-uuencode\r\n\r\n"
       b"begin 644 x\r\nend\r\n"
       b"--XX\r\nContent-Type: message/rfc822\r\n\r\n"
       b"Subject: inner\r\n\r\nInner body\r\n"
       b"--XX--\r\n")
QP_DECODED = "caf\u00e9 =na\u00efve\r\nline two".encode()


@pytest.fixture
def imapd(tmp_path):
    d = Daemon(tmp_path)
    d.add_user(USER, PW)
    d.start()
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


def login(d):
    c = imaplib.IMAP4("127.0.0.1", d.ports["imap"])
    c.login(USER, PW)
    return c


def fetch(c, uid, item):
    """The (response line, literal) of one UID FETCH item."""
    typ, data = c.uid("FETCH", str(uid), item)
    assert typ == "OK", data
    return data[0]


@pytest.fixture
def box(imapd):
    c = login(imapd)
    assert c.append("INBOX", None, None, MSG)[0] == "OK"
    c.select("INBOX")
    yield c
    c.logout()


def test_qp_part_decoded(box):
    head, body = fetch(box, 1, "BINARY.PEEK[1]")
    assert body == QP_DECODED, body
    # No NUL: a plain literal.
    assert head.endswith(b"BINARY[1] {%d}" % len(QP_DECODED)), head
    head, body = fetch(box, 1, "BINARY.PEEK[1]<4.4>")
    assert body == QP_DECODED[4:8] and b"BINARY[1]<4>" in head, head


def test_base64_part_decoded_as_literal8(box):
    head, body = fetch(box, 1, "BINARY.PEEK[2]")
    assert body == BLOB
    assert head.endswith(b"BINARY[2] ~{%d}" % len(BLOB)), head
    head, body = fetch(box, 1, "BINARY.PEEK[2]<2.6>")
    assert body == BLOB[2:8] and b"{6}" in head, head
    # A partial past the end is empty.
    head, body = fetch(box, 1, "BINARY.PEEK[2]<1000.5>")
    assert body == b"", head


def test_binary_size(box):
    typ, data = box.uid("FETCH", "1", "(BINARY.SIZE[1] BINARY.SIZE[2])")
    assert typ == "OK"
    line = data[0] if isinstance(data[0], bytes) else data[0][0]
    assert b"BINARY.SIZE[1] %d" % len(QP_DECODED) in line, line
    assert b"BINARY.SIZE[2] %d" % len(BLOB) in line, line


def test_unknown_cte(box):
    typ, data = box.uid("FETCH", "1", "BINARY.PEEK[3]")
    assert typ == "NO" and data[0].startswith(b"[UNKNOWN-CTE]"), data
    typ, data = box.uid("FETCH", "1", "BINARY.SIZE[3]")
    assert typ == "NO" and data[0].startswith(b"[UNKNOWN-CTE]"), data
    assert box.noop()[0] == "OK"


def test_composite_and_whole_as_they_stand(box):
    head, body = fetch(box, 1, "BINARY.PEEK[4]")
    assert body == b"Subject: inner\r\n\r\nInner body", body
    head, body = fetch(box, 1, "BINARY.PEEK[]")
    assert body == MSG
    # A part the message does not have is empty.
    head, body = fetch(box, 1, "BINARY.PEEK[9]")
    assert body == b"", head


def test_seen_by_binary_not_peek_or_size(box):
    fetch(box, 1, "BINARY.PEEK[1]")
    box.uid("FETCH", "1", "BINARY.SIZE[1]")
    typ, data = box.uid("FETCH", "1", "FLAGS")
    assert b"\\Seen" not in data[0], data
    typ, data = box.uid("FETCH", "1", "BINARY[1]")
    assert typ == "OK"
    typ, data = box.uid("FETCH", "1", "FLAGS")
    assert b"\\Seen" in data[0], data


def test_body_sections_unchanged_beside_binary(box):
    typ, data = box.uid("FETCH", "1", "(BODY.PEEK[2] BINARY.PEEK[2])")
    assert typ == "OK"
    raw_part = base64.encodebytes(BLOB).replace(b"\n", b"\r\n")
    assert data[0][1] == raw_part[:-2]
    assert data[1][1] == BLOB


def test_append_literal8_with_nul(imapd):
    sock = socket.create_connection(("127.0.0.1", imapd.ports["imap"]), 10)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    sock.sendall(b"l LOGIN %s %s\r\n" % (USER.encode(), PW.encode()))
    while not f.readline().startswith(b"l "):
        pass
    body = (b"Subject: nul\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: binary\r\n\r\nab\x00cd\r\n")
    sock.sendall(b"a APPEND INBOX ~{%d}\r\n" % len(body))
    assert f.readline().startswith(b"+")
    sock.sendall(body + b"\r\n")
    line = f.readline()
    assert re.match(rb"a OK \[APPENDUID \d+ 1\]", line), line
    sock.sendall(b"s SELECT INBOX\r\n")
    while not f.readline().startswith(b"s "):
        pass
    sock.sendall(b"f UID FETCH 1 (BINARY.PEEK[] BINARY.PEEK[1])\r\n")
    line = f.readline()
    assert line.endswith(b"BINARY[] ~{%d}\r\n" % len(body)), line
    assert f.read(len(body)) == body
    rest = f.readline()
    assert rest == b" BINARY[1] ~{7}\r\n", rest
    assert f.read(7) == b"ab\x00cd\r\n"
    assert f.readline() == b")\r\n"
    assert f.readline().startswith(b"f OK")
    sock.close()
