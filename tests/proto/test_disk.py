"""Storage failures: a full disk gets 452 4.3.1, an I/O error 451 4.3.0, and
nothing is half-stored either way; service resumes once the cause is gone."""
import os
import shutil
import smtplib
import sqlite3
import subprocess

import pytest

from smtputil import message

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def inbox_rows(d, user):
    d.release_index()
    db = sqlite3.connect(os.path.join(d.user_dir(user), "pushmail.sqlite"))
    try:
        return db.execute("SELECT COUNT(*) FROM message").fetchone()[0]
    finally:
        db.close()


def try_send(d, body_size):
    with smtplib.SMTP("127.0.0.1", d.ports["smtp"], timeout=30) as s:
        s.ehlo("c")
        s.mail("x@r.example")
        s.rcpt("alice@example.org")
        return s.data(message(body="d" * body_size + "\r\n"))


@needs_root
def test_full_disk(daemon, tmp_path):
    os.makedirs(daemon.data)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4M", "tmpfs",
                        daemon.data], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.decode())
    try:
        daemon.add_user("alice@example.org")
        daemon.start()
        assert try_send(daemon, 100)[0] == 250
        filler = os.path.join(daemon.data, "filler")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        code, text = try_send(daemon, 200000)
        assert code == 452 and text.startswith(b"4.3.1"), (code, text)
        assert len(daemon.messages("alice@example.org")) == 1
        assert os.listdir(os.path.join(daemon.user_dir(
            "alice@example.org"), "tmp")) == []
        os.unlink(filler)
        assert try_send(daemon, 200000)[0] == 250
        assert len(daemon.messages("alice@example.org")) == 2
        assert inbox_rows(daemon, "alice@example.org") == 2
        daemon.check_clean_exit(daemon.stop())
    finally:
        daemon.stop()
        subprocess.run(["umount", "-l", daemon.data])


@needs_root
@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr")
def test_io_error(daemon):
    daemon.add_user("alice@example.org")
    daemon.start()
    tmp = os.path.join(daemon.user_dir("alice@example.org"), "tmp")
    # An immutable directory refuses new files even to root: EPERM.
    if subprocess.run(["chattr", "+i", tmp]).returncode != 0:
        pytest.skip("chattr +i not supported here")
    try:
        code, text = try_send(daemon, 100)
        assert code == 451 and text.startswith(b"4.3.0"), (code, text)
    finally:
        subprocess.run(["chattr", "-i", tmp])
    assert daemon.messages("alice@example.org") == []
    assert inbox_rows(daemon, "alice@example.org") == 0
    assert try_send(daemon, 100)[0] == 250
    assert inbox_rows(daemon, "alice@example.org") == 1
