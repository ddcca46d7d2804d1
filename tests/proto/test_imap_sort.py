"""IMAP SORT, THREAD (RFC 5256, RFC 5957) and SEARCHRES (RFC 5182) against
the real daemon: every sort criterion with mixed case, Re:/Fwd: and MIME
encoded subjects, REVERSE, combined criteria, UID SORT after an expunge,
SORT with a search program and a bad charset; THREAD REFERENCES with a
missing parent and ORDEREDSUBJECT; SEARCH RETURN (SAVE) then FETCH $, UID
STORE $, SEARCH $, $ after an expunge and after a new SELECT."""
import imaplib

import pytest

from conftest import Daemon

USER = "alice@example.org"
PW = "secret"


def msg(headers, body="hello\r\n"):
    return ("".join(f"{h}\r\n" for h in headers) + "\r\n" + body).encode()


# (message, INTERNALDATE): appended in this order, so UID = position + 1.
SORT_MSGS = [
    (msg(['From: "Zed Person" <Zed@b.example>', "To: amy@x.example",
          "Cc: carl@x.example", "Date: Fri, 3 Jan 2020 10:00:00 +0000",
          "Subject: Re: Banana"], "short\r\n"),
     '"04-Jun-2021 10:00:00 +0000"'),
    (msg(["From: alice@a.example", "To: Bob <zoe@x.example>",
          "Date: Wed, 1 Jan 2020 10:00:00 +0000", "Subject: apple"],
         "x" * 3000 + "\r\n"),
     '"02-Jun-2021 10:00:00 +0000"'),
    (msg(['From: "bob" <Mike@c.example>', 'To: "Ann" <yan@x.example>',
          "Cc: bill@x.example", "Date: Thu, 2 Jan 2020 10:00:00 +0000",
          "Subject: =?UTF-8?B?Q2hlcnJ5?="], "y" * 500 + "\r\n"),
     '"03-Jun-2021 10:00:00 +0000"'),
    (msg(["From: Carol <carol@d.example>", "To: dan@x.example",
          "Subject: Fwd: APPLE (fwd)"], "z\r\n"),
     '"01-Jun-2021 10:00:00 +0000"'),
]

THREAD_MSGS = [
    ["Message-ID: <a@x>", "Subject: topic",
     "Date: Wed, 1 Jan 2020 10:00:00 +0000"],
    ["Message-ID: <b@x>", "References: <a@x>", "Subject: Re: topic",
     "Date: Wed, 1 Jan 2020 10:20:00 +0000"],
    ["Message-ID: <c@x>", "References: <a@x> <b@x>", "Subject: Re: topic",
     "Date: Wed, 1 Jan 2020 10:30:00 +0000"],
    ["Message-ID: <d@x>", "References: <a@x> <missing@x>",
     "Subject: Re: topic", "Date: Wed, 1 Jan 2020 10:40:00 +0000"],
    ["Message-ID: <e@x>", "In-Reply-To: <b@x>", "Subject: RE: Topic",
     "Date: Wed, 1 Jan 2020 10:25:00 +0000"],
    ["Message-ID: <f@x>", "Subject: other",
     "Date: Wed, 1 Jan 2020 09:00:00 +0000"],
]


@pytest.fixture
def imapd(tmp_path):
    d = Daemon(tmp_path)
    d.add_user(USER, PW)
    d.start()
    m = imaplib.IMAP4("127.0.0.1", d.ports["imap"])
    m.login(USER, PW)
    m.create("Threads")
    for body, date in SORT_MSGS:
        typ, data = m.append("INBOX", None, date, body)
        assert typ == "OK", data
    for headers in THREAD_MSGS:
        typ, data = m.append("Threads", None, None,
                             msg(["From: x@y.example"] + headers))
        assert typ == "OK", data
    m.logout()
    yield d
    if d.proc is not None:
        d.check_clean_exit(d.stop())


def login(d, mailbox="INBOX"):
    m = imaplib.IMAP4("127.0.0.1", d.ports["imap"])
    m.login(USER, PW)
    typ, data = m.select(mailbox)
    assert typ == "OK", data
    return m


def sort(m, criteria, *keys, uid=False):
    if uid:
        typ, data = m.uid("SORT", criteria, "UTF-8", *(keys or ("ALL",)))
    else:
        typ, data = m.sort(criteria, "UTF-8", *(keys or ("ALL",)))
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def test_sort_each_criterion(imapd):
    m = login(imapd)
    assert sort(m, "(ARRIVAL)") == [4, 2, 3, 1]
    # Message 4 has no Date: its INTERNALDATE (2021) stands in.
    assert sort(m, "(DATE)") == [2, 3, 1, 4]
    assert sort(m, "(FROM)") == [2, 4, 3, 1]
    assert sort(m, "(TO)") == [1, 4, 3, 2]
    # No Cc sorts as the empty string, first; ties go by number.
    assert sort(m, "(CC)") == [2, 4, 3, 1]
    # Re:, Fwd:, (fwd), case and an encoded word do not count.
    assert sort(m, "(SUBJECT)") == [2, 4, 1, 3]
    assert sort(m, "(DISPLAYFROM)") == [2, 3, 4, 1]
    assert sort(m, "(DISPLAYTO)") == [1, 3, 2, 4]
    typ, data = m.fetch("1:4", "(RFC822.SIZE)")
    sizes = {}
    for line in data:
        seq, rest = line.decode().split(" ", 1)
        sizes[int(seq)] = int(rest.split("RFC822.SIZE ")[1].rstrip(")"))
    assert sort(m, "(SIZE)") == sorted(sizes, key=lambda k: (sizes[k], k))
    m.logout()


def test_sort_reverse_combined_and_search(imapd):
    m = login(imapd)
    assert sort(m, "(REVERSE DATE)") == [4, 1, 3, 2]
    assert sort(m, "(SUBJECT REVERSE DATE)") == [4, 2, 1, 3]
    assert sort(m, "(REVERSE SUBJECT DATE)") == [3, 1, 2, 4]
    # A header key makes the search wait for the store.
    assert sort(m, "(DATE)", "SUBJECT", "apple") == [2, 4]
    assert sort(m, "(ARRIVAL)", "NOT", "FROM", "alice") == [4, 3, 1]
    assert sort(m, "(DATE)", "SUBJECT", "nothing-like-it") == []
    typ, data = m.sort("(DATE)", "KOI8-R", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0]
    with pytest.raises(imaplib.IMAP4.error):
        m.sort("(COLOUR)", "UTF-8", "ALL")
    with pytest.raises(imaplib.IMAP4.error):
        m.sort("(DATE REVERSE)", "UTF-8", "ALL")
    m.logout()


def test_uid_sort_after_expunge(imapd):
    m = login(imapd)
    m.store("2", "+FLAGS", "(\\Deleted)")
    m.expunge()
    assert sort(m, "(DATE)") == [2, 1, 3]
    assert sort(m, "(DATE)", uid=True) == [3, 1, 4]
    assert sort(m, "(SUBJECT)", "UID", "1:3", uid=True) == [1, 3]
    m.logout()


def test_thread_references_and_orderedsubject(imapd):
    m = login(imapd, "Threads")
    typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
    assert typ == "OK", data
    # <missing@x> is a dummy: message 4 moves up below message 1.
    assert data[0] == b"(6)(1 (2 (5)(3))(4))"
    typ, data = m.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
    assert data[0] == b"(6)(1 (2)(5)(3)(4))"
    typ, data = m.uid("THREAD", "REFERENCES", "US-ASCII", "UID", "2:5")
    assert data[0] == b"((2 (5)(3))(4))"
    typ, data = m.thread("REFERENCES", "UTF-8", "SUBJECT", "nothing")
    assert typ == "OK" and data in ([None], [b""])
    with pytest.raises(imaplib.IMAP4.error):
        m.thread("BYMOON", "UTF-8", "ALL")
    m.logout()


def fetch_uids(m, which="$"):
    typ, data = m.fetch(which, "(UID)")
    assert typ == "OK", data
    return [int(x.decode().split("UID ")[1].rstrip(")"))
            for x in data if x is not None]


def test_searchres_fetch_store_and_expunge(imapd):
    m = login(imapd, "Threads")
    typ, data = m.search(None, "RETURN", "(SAVE)", "SUBJECT", "topic")
    assert typ == "OK", data
    # SAVE alone answers no ESEARCH.
    assert data == [None]
    assert fetch_uids(m) == [1, 2, 3, 4, 5]
    typ, data = m.uid("STORE", "$", "+FLAGS", "(\\Flagged)")
    assert typ == "OK", data
    typ, data = m.search(None, "FLAGGED")
    assert data[0].split() == [b"1", b"2", b"3", b"4", b"5"]
    m.store("2", "+FLAGS", "(\\Deleted)")
    m.expunge()
    # The expunged message drops out of "$"; numbers shift.
    assert fetch_uids(m) == [1, 3, 4, 5]
    typ, data = m.search(None, "$")
    assert data[0].split() == [b"1", b"2", b"3", b"4"]
    typ, data = m.uid("SEARCH", "$", "NOT", "UID", "3")
    assert data[0].split() == [b"1", b"4", b"5"]
    # MIN alone saves only the lowest.
    m.search(None, "RETURN", "(SAVE MIN)", "ALL")
    assert fetch_uids(m) == [1]
    m.search(None, "RETURN", "(SAVE COUNT)", "UID", "4:6")
    typ, data = m.response("ESEARCH")
    assert b"COUNT 3" in data[-1]
    assert fetch_uids(m) == [4, 5, 6]
    # A new SELECT forgets it.
    m.select("Threads")
    assert fetch_uids(m) == []
    m.logout()
