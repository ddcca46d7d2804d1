#!/usr/bin/env python3
"""A stand-in for pushmaild, to self-test the benchmark harness only.

Speaks just enough of pushmaild's command line ('-c FILE serve', '-c FILE
user add ADDR'), SMTP and LMTP to receive the benchmark's mail, and stores
each message as pushmaild would be observed from outside: a file in
DATA_DIR/mail/USER/new/ (written to tmp/, fdatasynced, renamed, directory
fsynced) and a row in DATA_DIR/mail/USER/pushmail.sqlite (table message).
Its figures mean nothing; never quote them.
"""

import asyncio
import os
import sqlite3
import sys
import time


def read_config(path):
    """Returns (data_dir, [(protocol, port)]) from a pushmaild config."""
    conf, listeners = {}, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("[listener"):
                listeners.append({})
            elif "=" in line:
                key, value = (s.strip() for s in line.split("=", 1))
                (listeners[-1] if listeners else conf)[key] = value
    ports = [(x["protocol"], int(x["address"].rsplit(":", 1)[1]))
             for x in listeners]
    return conf["data_dir"], ports


class Store:
    """Maildir plus SQLite index per user; every write is synced."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.dbs = {}
        self.seq = 0

    def deliver(self, user, data):
        box = os.path.join(self.data_dir, "mail", user)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(box, sub), exist_ok=True)
        self.seq += 1
        name = f"{time.time_ns()}.{os.getpid()}.{self.seq}"
        tmp = os.path.join(box, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fdatasync(f.fileno())
        db = self._db(user, box)
        with db:
            db.execute("INSERT INTO message(name, size) VALUES (?, ?)",
                       (name, len(data)))
        os.rename(tmp, os.path.join(box, "new", name))
        fd = os.open(os.path.join(box, "new"), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)

    def _db(self, user, box):
        if user not in self.dbs:
            db = sqlite3.connect(os.path.join(box, "pushmail.sqlite"))
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("CREATE TABLE IF NOT EXISTS message("
                       "uid INTEGER PRIMARY KEY, name TEXT, size INTEGER)")
            self.dbs[user] = db
        return self.dbs[user]


async def session(reader, writer, store, lmtp):
    """One SMTP/LMTP session: EHLO/LHLO, MAIL, RCPT, DATA, NOOP, RSET,
    QUIT. Bounded by the reader's line limit and a 60 s idle timeout."""
    def reply(text):
        writer.write(text.encode() + b"\r\n")

    rcpts = []
    reply("220 fake.pushmaild ready")
    while True:
        line = await asyncio.wait_for(reader.readline(), 60)
        if not line:
            break
        verb = line[:4].upper()
        if verb in (b"EHLO", b"LHLO", b"HELO"):
            reply("250 fake.pushmaild")
        elif verb == b"MAIL":
            rcpts = []
            reply("250 ok")
        elif verb == b"RCPT":
            rcpts.append(line.split(b"<", 1)[1].split(b">")[0].decode())
            reply("250 ok")
        elif verb == b"DATA":
            reply("354 go ahead")
            data = await reader.readuntil(b"\r\n.\r\n")
            for rcpt in rcpts:
                store.deliver(rcpt, data[:-3])
            for _ in rcpts if lmtp else [None]:
                reply("250 stored")
        elif verb in (b"NOOP", b"RSET"):
            reply("250 ok")
        elif verb == b"QUIT":
            reply("221 bye")
            break
        else:
            reply("500 unknown")
        await writer.drain()
    await writer.drain()
    writer.close()


async def serve(conf):
    data_dir, ports = read_config(conf)
    store = Store(data_dir)
    servers = []
    for proto, port in ports:
        def handler(r, w, lmtp=(proto == "lmtp")):
            return session(r, w, store, lmtp)
        servers.append(await asyncio.start_server(
            handler, "127.0.0.1", port, limit=1 << 20))
    print("level=info event=ready", file=sys.stderr, flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv):
    if argv[:1] == ["-c"] and argv[2:3] == ["serve"]:
        asyncio.run(serve(argv[1]))
    elif argv[:1] == ["-c"] and argv[2:4] == ["user", "add"]:
        sys.stdin.readline()
    else:
        sys.exit("usage: fake_pushmaild.py -c FILE serve | "
                 "-c FILE user add ADDRESS")


if __name__ == "__main__":
    main(sys.argv[1:])
