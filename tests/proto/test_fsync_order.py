"""Traces the daemon's system calls to show each 250 follows its syncs.

SIGKILL leaves the page cache intact, so only a trace shows the order. With
fsync_mode = file (the default): the message file is synced in tmp/, the
index commit is synced (SQLite WAL), the file is renamed into new/ and new/
is synced, and only then is the reply written to the client. With
fsync_mode = syncfs: the file is written in tmp/ without a sync of its own,
one syncfs(2) makes it durable, the file is renamed into new/, a second
syncfs makes the rename and the index commit durable, then the reply is
written.
"""
import os
import re
import signal
import shutil
import smtplib

import pytest

from smtputil import message

SYNC = re.compile(r"\b(fsync|fdatasync)\(\d+<([^>]*)>")
SYNCFS = re.compile(r"\bsyncfs\(\d+<([^>]*)>")
WRITE = re.compile(r"\b(write|writev)\(\d+<([^>]*)>")
RENAME = re.compile(r"\brename(at2?)?\(.*?/tmp\b.*?/new\b")
REPLY = re.compile(r"\b(write|writev|sendmsg|sendto)\(\d+<TCP.*\"250 2\.0\.0")


def completion_lines(path):
    """Yields (index, text) with unfinished calls joined to their ends."""
    pending = {}
    for i, line in enumerate(open(path, errors="replace")):
        pid, _, rest = line.partition(" ")
        if rest.rstrip().endswith("<unfinished ...>"):
            pending[pid] = rest.rstrip()[:-len("<unfinished ...>")]
            continue
        m = re.match(r"<\.\.\. \w+ resumed>(.*)", rest)
        if m and pid in pending:
            rest = pending.pop(pid) + m.group(1)
        yield i, rest


def traced_delivery(daemon, tmp_path, mode):
    """Delivers one message under strace; returns the trace's path."""
    daemon.write_config(f"fsync_mode = {mode}")
    daemon.add_user("alice@example.org")
    trace = tmp_path / "trace.txt"
    daemon.start(wrapper=("strace", "-f", "-yy", "-s", "64", "-o", str(trace),
                          "-e", "trace=fsync,fdatasync,syncfs,rename,"
                          "renameat,renameat2,write,writev,sendmsg,sendto"),
                 # LeakSanitizer cannot run under ptrace.
                 env={"ASAN_OPTIONS": "detect_leaks=0"})
    with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=30) as s:
        s.sendmail("x@r.example", ["alice@example.org"], message())
    # Signal pushmaild itself; strace exits with its status.
    pid = daemon.proc.pid
    child = open(f"/proc/{pid}/task/{pid}/children").read().split()[0]
    os.kill(int(child), signal.SIGTERM)
    daemon.check_clean_exit(daemon.stop(sig=0))
    return trace


def order_file_mode(trace):
    """tmp/ file fdatasync, WAL sync, rename, new/ fsync, reply."""
    file_sync = wal_sync = rename = dir_sync = reply = None
    for i, text in completion_lines(trace):
        m = SYNC.search(text)
        if m and "= 0" in text:
            path = m.group(2)
            if "/alice@example.org/tmp/" in path and file_sync is None:
                file_sync = i
            elif path.endswith("pushmail.sqlite-wal"):
                wal_sync = i if rename is None else wal_sync
            elif path.endswith("/alice@example.org/new"):
                dir_sync = i if dir_sync is None else dir_sync
        elif RENAME.search(text) and "= 0" in text and rename is None:
            rename = i
        elif REPLY.search(text) and reply is None:
            reply = i
    return [file_sync, wal_sync, rename, dir_sync, reply]


def order_syncfs_mode(trace):
    """tmp/ file write, syncfs, rename, syncfs, reply; no per-file sync."""
    write = first_syncfs = rename = second_syncfs = reply = None
    for i, text in completion_lines(trace):
        m = SYNC.search(text)
        assert not (m and "/alice@example.org/tmp/" in m.group(2)), text
        m = WRITE.search(text)
        if m and "/alice@example.org/tmp/" in m.group(2) and write is None:
            write = i
        elif SYNCFS.search(text) and "= 0" in text and write is not None:
            if first_syncfs is None:
                first_syncfs = i
            elif rename is not None and second_syncfs is None:
                second_syncfs = i
        elif (RENAME.search(text) and "= 0" in text and rename is None
              and first_syncfs is not None):
            rename = i
        elif REPLY.search(text) and reply is None:
            reply = i
    return [write, first_syncfs, rename, second_syncfs, reply]


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
@pytest.mark.parametrize("mode", ["syncfs", "file"])
def test_reply_follows_syncs(daemon, tmp_path, mode):
    trace = traced_delivery(daemon, tmp_path, mode)
    if mode == "file":
        order = order_file_mode(trace)
    else:
        order = order_syncfs_mode(trace)
    assert None not in order, order
    assert order == sorted(order), order
