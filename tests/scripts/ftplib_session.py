"""A session with Python's ftplib against the server under test.

Usage: python3 ftplib_session.py HOST PORT
Asserts every reply code and byte; prints OK at the end. Run by tests/it/ftplib.rs.
"""

import ftplib
import io
import os
import sys


def code(resp):
    return resp[:3]


def expect(resp, want):
    assert code(resp) == want, "expected %s, got %r" % (want, resp)
    return resp


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    ftp = ftplib.FTP()
    expect(ftp.connect(host, port, timeout=10), "220")
    expect(ftp.login("user", "12345"), "230")

    expect(ftp.sendcmd("MKD pydir"), "257")
    expect(ftp.sendcmd("CWD pydir"), "250")
    assert ftp.pwd() == "/pydir", ftp.pwd()

    data = os.urandom(10 * 1024 * 1024)
    expect(ftp.storbinary("STOR blob", io.BytesIO(data)), "226")
    got = bytearray()
    expect(ftp.retrbinary("RETR blob", got.extend), "226")
    assert bytes(got) == data, "RETR returned different bytes"

    facts = dict(ftp.mlsd())
    assert facts["blob"]["type"] == "file", facts
    assert int(facts["blob"]["size"]) == len(data), facts
    assert ftp.nlst() == ["blob"], ftp.nlst()
    # retrlines (MLSD, NLST) left the session in TYPE A, where SIZE is refused.
    try:
        ftp.size("blob")
        raise AssertionError("SIZE worked in ASCII mode")
    except ftplib.error_perm as e:
        assert str(e) == "550 SIZE not allowed in ASCII mode.", e
    expect(ftp.voidcmd("TYPE I"), "200")
    assert ftp.size("blob") == len(data)

    rest = 1234567
    tail = bytearray()
    expect(ftp.retrbinary("RETR blob", tail.extend, rest=rest), "226")
    assert bytes(tail) == data[rest:], "REST + RETR returned the wrong tail"

    # QUIT during a transfer (RFC 959 §4.1.1): the transfer's 226 first, then the 221,
    # then the server closes.
    q = ftplib.FTP()
    expect(q.connect(host, port, timeout=10), "220")
    expect(q.login("user", "12345"), "230")
    expect(q.sendcmd("CWD pydir"), "250")
    expect(q.voidcmd("TYPE I"), "200")
    conn = q.transfercmd("RETR blob")
    q.putcmd("QUIT")
    got = bytearray()
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        got.extend(chunk)
    conn.close()
    assert bytes(got) == data, "RETR before QUIT returned different bytes"
    expect(q.voidresp(), "226")
    expect(q.getresp(), "221")
    assert q.file.readline() == "", "the session stayed open after 221"
    q.close()

    # Active mode (PORT) too.
    ftp.set_pasv(False)
    small = os.urandom(100 * 1024)
    expect(ftp.storbinary("STOR small", io.BytesIO(small)), "226")
    got = bytearray()
    expect(ftp.retrbinary("RETR small", got.extend), "226")
    assert bytes(got) == small, "active RETR returned different bytes"
    expect(ftp.sendcmd("DELE small"), "250")
    ftp.set_pasv(True)

    lines = []
    expect(ftp.retrlines("LIST", lines.append), "226")
    assert len(lines) == 1 and lines[0].endswith(" blob"), lines

    expect(ftp.sendcmd("RNFR blob"), "350")
    expect(ftp.sendcmd("RNTO renamed"), "250")
    assert ftp.nlst() == ["renamed"], ftp.nlst()
    expect(ftp.sendcmd("DELE renamed"), "250")
    assert ftp.nlst() == [], ftp.nlst()
    expect(ftp.sendcmd("CWD .."), "250")
    expect(ftp.sendcmd("RMD pydir"), "250")

    try:
        ftp.sendcmd("RETR nothere")
        raise AssertionError("RETR of a missing file succeeded")
    except ftplib.error_perm as e:
        assert str(e).startswith("550"), e

    expect(ftp.quit(), "221")
    print("OK")


if __name__ == "__main__":
    main()
