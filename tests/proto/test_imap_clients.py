"""Real IMAP clients from Debian against pushmaild: mbsync (isync) syncing
both ways with a local Maildir, fetchmail in IDLE hearing a delivery at
once, curl's imap:// URLs, and offlineimap as a third client.

A client binary that is missing skips its test on a developer's machine;
under CI (CI set) it fails instead, since scripts/deps.sh installs it."""
import hashlib
import imaplib
import os
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import time

import pytest

from conftest import Daemon

USER = "alice@example.org"
PW = "secret"


def need(binary):
    if shutil.which(binary) is not None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{binary} is missing; scripts/deps.sh installs it")
    pytest.skip(f"{binary} not installed")


@pytest.fixture
def imapd(tmp_path):
    (tmp_path / "srv").mkdir()
    d = Daemon(tmp_path / "srv")
    d.add_user(USER, PW)
    d.start()
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


def deliver(d, subject, body="hello"):
    s = smtplib.SMTP("127.0.0.1", d.ports["smtp"], timeout=10)
    s.sendmail("a@remote.example", [USER],
               (f"From: a@remote.example\r\nTo: {USER}\r\n"
                f"Subject: {subject}\r\n\r\n{body}\r\n").encode())
    s.quit()


def login(d):
    m = imaplib.IMAP4("127.0.0.1", d.ports["imap"], timeout=10)
    m.login(USER, PW)
    return m


def server_files(d, box=""):
    """{uid: path} of the message files of one of the user's mailboxes."""
    base = d.user_dir(USER)
    if box:
        base = os.path.join(base, "." + box)
    out = {}
    for sub in ("new", "cur"):
        for name in os.listdir(os.path.join(base, sub)):
            m = re.search(r",U=(\d+)", name)
            out[int(m.group(1))] = os.path.join(base, sub, name)
    return out


def uid_flags(m, box="INBOX"):
    """{uid: set of flags} of a mailbox, read with imaplib."""
    typ, _ = m.select(box)
    assert typ == "OK"
    typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK"
    out = {}
    for item in data:
        if item is None:
            continue
        text = item.decode()
        u = re.search(r"UID (\d+)", text)
        f = re.search(r"FLAGS \(([^)]*)\)", text)
        out[int(u.group(1))] = set(f.group(1).split()) - {"\\Recent"}
    return out


# ---------------------------------------------------------------- mbsync


def mbsync_rc(d, tmp_path, local):
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""IMAPAccount pm
Host 127.0.0.1
Port {d.ports['imap']}
User {USER}
Pass {PW}
SSLType STARTTLS
CertificateFile {d.data}/tls/cert.pem

IMAPStore pm-remote
Account pm

MaildirStore pm-local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel pm
Far :pm-remote:
Near :pm-local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    rc.chmod(0o600)
    return rc


def mbsync(rc):
    r = subprocess.run(["mbsync", "-c", str(rc), "-V", "pm"],
                       capture_output=True, timeout=60)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, out
    return out


def local_msgs(folder):
    """{uid: (path, flags)} of a local Maildir written by mbsync."""
    out = {}
    for sub in ("new", "cur"):
        for name in os.listdir(os.path.join(folder, sub)):
            m = re.search(r",U=(\d+):2,([A-Z]*)$", name)
            assert m, name
            out[int(m.group(1))] = (os.path.join(folder, sub, name),
                                    set(m.group(2)))
    return out


def same_message(local_path, server_path):
    """mbsync stores LF line ends and adds an X-TUID: header."""
    local = open(local_path, "rb").read()
    local = re.sub(rb"(?m)^X-TUID: .*\n", b"", local)
    server = open(server_path, "rb").read().replace(b"\r\n", b"\n")
    return local == server


def test_mbsync_both_ways(imapd, tmp_path):
    need("mbsync")
    for i in range(3):
        deliver(imapd, f"m{i}", f"body {i}")
    m = login(imapd)
    m.select("INBOX")
    m.uid("STORE", "2", "+FLAGS", "(\\Flagged)")
    m.uid("STORE", "3", "+FLAGS", "(\\Seen \\Answered)")
    m.logout()
    local = tmp_path / "mail"
    local.mkdir()
    rc = mbsync_rc(imapd, tmp_path, local)

    # Pull: every message with its flags and its exact bytes.
    mbsync(rc)
    inbox = str(local / "INBOX")
    got = local_msgs(inbox)
    assert sorted(got) == [1, 2, 3]
    assert got[1][1] == set() and got[2][1] == {"F"}
    assert got[3][1] == {"R", "S"}
    srv = server_files(imapd)
    for uid, (path, _) in got.items():
        assert same_message(path, srv[uid]), uid
    # The special-use folders came along too.
    assert os.path.isdir(local / "Sent" / "cur")

    # Push: flags set locally, a local deletion, a new local folder.
    path1 = got[1][0]
    os.rename(path1, os.path.join(inbox, "cur",
                                  os.path.basename(path1) + "S"))
    os.unlink(got[3][0])
    proj = local / "Projects"
    for sub in ("cur", "new", "tmp"):
        (proj / sub).mkdir(parents=True)
    (proj / "new" / "1.local.vm").write_bytes(
        b"From: me@example.org\nSubject: local\n\nwritten locally\n")
    mbsync(rc)
    m = login(imapd)
    flags = uid_flags(m)
    assert sorted(flags) == [1, 2], flags
    assert flags[1] == {"\\Seen"} and flags[2] == {"\\Flagged"}
    typ, data = m.list()
    assert any(b'"Projects"' in line or line.endswith(b" Projects")
               for line in data), data
    typ, data = m.select("Projects")
    assert typ == "OK" and data == [b"1"], data
    typ, data = m.fetch("1", "(BODY.PEEK[TEXT])")
    assert data[0][1] == b"written locally\r\n"
    m.logout()
    assert 3 not in server_files(imapd)

    # A message delivered later arrives on the next run.
    deliver(imapd, "later", "late body")
    mbsync(rc)
    got = local_msgs(inbox)
    assert sorted(got) == [1, 2, 4]
    assert same_message(got[4][0], server_files(imapd)[4])


# ------------------------------------------------------------- fetchmail


def test_fetchmail_idle_push(imapd, tmp_path):
    """fetchmail --idle gets a delivery into its MDA within 2 s."""
    need("fetchmail")
    deliver(imapd, "before")
    home = tmp_path / "fm"
    out = home / "out"
    out.mkdir(parents=True)
    mda = home / "mda.sh"
    mda.write_text("#!/bin/sh\nd=\"$(dirname \"$0\")/out\"\n"
                   "cat > \"$d/tmp.$$\" && mv \"$d/tmp.$$\" \"$d/msg.$$\"\n")
    mda.chmod(0o755)
    rc = home / "fetchmailrc"
    rc.write_text(f"poll 127.0.0.1 service {imapd.ports['imap']} "
                  f"protocol IMAP user \"{USER}\" password \"{PW}\" "
                  f"idle keep sslproto '' mda \"{mda}\"\n")
    rc.chmod(0o600)
    log = open(home / "log", "wb")
    env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home))
    proc = subprocess.Popen(
        ["fetchmail", "-f", str(rc), "--nodetach", "-v", "--pidfile",
         str(home / "pid")], stdout=log, stderr=log, env=env)
    try:
        idle_count = 0
        deadline = time.time() + 20
        while time.time() < deadline:
            text = (home / "log").read_text(errors="replace")
            idle_count = text.count("IMAP< + ")
            if idle_count and len(os.listdir(out)) == 1:
                break
            assert proc.poll() is None, text
            time.sleep(0.05)
        assert idle_count, text
        assert len(os.listdir(out)) == 1
        start = time.monotonic()
        deliver(imapd, "pushed", "now")
        while time.monotonic() - start < 2:
            done = [n for n in os.listdir(out) if n.startswith("msg.")]
            if len(done) == 2:
                break
            time.sleep(0.02)
        assert len(done) == 2, (home / "log").read_text(errors="replace")
        texts = [open(os.path.join(out, n), "rb").read() for n in done]
        assert any(b"Subject: pushed" in t and b"now" in t for t in texts)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    # keep: the messages are still on the server, now \Seen.
    m = login(imapd)
    assert uid_flags(m) == {1: {"\\Seen"}, 2: {"\\Seen"}}
    m.logout()


# ------------------------------------------------------------------ curl


def curl(d, url, *args, check=True):
    r = subprocess.run(["curl", "-sS", f"imap://127.0.0.1:{d.ports['imap']}"
                        + url, "-u", f"{USER}:{PW}", *args],
                       capture_output=True, timeout=30)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_curl_urls(imapd):
    need("curl")
    deliver(imapd, "one", "first")
    deliver(imapd, "two", "second")
    # LIST at the top level and of one mailbox.
    out = curl(imapd, "/").stdout.decode().splitlines()
    assert '* LIST (\\HasNoChildren) "/" "INBOX"' in out
    assert '* LIST (\\HasNoChildren \\Sent) "/" "Sent"' in out
    assert curl(imapd, "/INBOX").stdout.decode().splitlines() == [
        '* LIST (\\HasNoChildren) "/" "INBOX"']
    # SELECT and UID FETCH of one message: its exact bytes.
    raw = open(server_files(imapd)[2], "rb").read()
    assert curl(imapd, "/INBOX;UID=2").stdout == raw
    assert curl(imapd, "/INBOX/;UID=1/;SECTION=TEXT").stdout == b"first\r\n"
    hdr = curl(imapd, "/INBOX;UID=2;SECTION=HEADER.FIELDS%20(SUBJECT)")
    assert hdr.stdout == b"Subject: two\r\n\r\n"
    assert curl(imapd, "/INBOX;UID=1;PARTIAL=0.6").stdout == b"Return"
    # A UID that names nothing, and a stale UIDVALIDITY, fail.
    assert curl(imapd, "/INBOX;UID=99", check=False).returncode != 0
    assert curl(imapd, "/INBOX;UIDVALIDITY=1;UID=1",
                check=False).returncode != 0
    # EXAMINE as a custom request, and a search by URL query.
    lines = curl(imapd, "/", "-X", "EXAMINE INBOX").stdout.decode()
    lines = lines.splitlines()
    assert "* 2 EXISTS" in lines
    assert "* OK [PERMANENTFLAGS ()] Read-only" in lines
    assert any(l.startswith("* OK [UIDVALIDITY ") for l in lines)
    assert any(l.startswith("* OK [UIDNEXT 3]") for l in lines)
    assert curl(imapd, "/INBOX?SUBJECT%20two").stdout == b"* SEARCH 2\r\n"
    # A custom command runs in the mailbox of the URL (selected first).
    out = curl(imapd, "/INBOX", "-X", "SEARCH ALL").stdout
    assert out == b"* SEARCH 1 2\r\n"
    # EXAMINE did not set \Seen; the FETCHes in SELECT did.
    m = login(imapd)
    assert uid_flags(m)[1] == {"\\Seen"} and uid_flags(m)[2] == {"\\Seen"}
    m.logout()


# ----------------------------------------------------------- offlineimap


def fingerprint(d):
    """SHA-256 of the daemon's certificate: its name is not 127.0.0.1."""
    with open(os.path.join(d.data, "tls", "cert.pem")) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


def test_offlineimap(imapd, tmp_path):
    need("offlineimap")
    deliver(imapd, "one", "first")
    deliver(imapd, "two", "second")
    local = tmp_path / "oi-mail"
    meta = tmp_path / "oi-meta"
    rc = tmp_path / "offlineimaprc"
    rc.write_text(f"""[general]
accounts = pm
metadata = {meta}
ui = basic

[Account pm]
localrepository = pm-local
remoterepository = pm-remote

[Repository pm-local]
type = Maildir
localfolders = {local}

[Repository pm-remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {imapd.ports['imaps']}
remoteuser = {USER}
remotepass = {PW}
ssl = yes
cert_fingerprint = {fingerprint(imapd)}
""")

    def run():
        r = subprocess.run(["offlineimap", "-c", str(rc), "-o", "-u",
                            "basic"], capture_output=True, timeout=120,
                           env=dict(os.environ, HOME=str(tmp_path)))
        out = (r.stdout + r.stderr).decode(errors="replace")
        assert r.returncode == 0 and "ERROR" not in out, out
        return out

    run()
    inbox = local / "INBOX"
    names = os.listdir(inbox / "new") + os.listdir(inbox / "cur")
    assert len(names) == 2, names
    bodies = sorted(open(os.path.join(inbox, sub, n), "rb").read()
                    for sub in ("new", "cur")
                    for n in os.listdir(inbox / sub))
    srv = sorted(open(p, "rb").read() for p in server_files(imapd).values())
    norm = [b.replace(b"\r\n", b"\n") for b in srv]
    assert [b.replace(b"\r\n", b"\n") for b in bodies] == norm
    # Mark one read locally; offlineimap pushes the flag back.
    sub = "new" if os.listdir(inbox / "new") else "cur"
    name = sorted(os.listdir(inbox / sub))[0]
    base = name.split(":2,")[0]
    os.rename(inbox / sub / name, inbox / "cur" / (base + ":2,S"))
    run()
    m = login(imapd)
    assert sorted(map(sorted, uid_flags(m).values())) == [[], ["\\Seen"]]
    m.logout()
