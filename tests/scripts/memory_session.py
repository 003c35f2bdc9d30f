"""A session with Python's ftplib against a server that serves a MemoryFs.

Usage: python3 memory_session.py HOST PORT
The test put /seed/big.bin (10 MB, binary) and /seed/text.txt (10 MB of LF-terminated
ASCII lines) in the tree. This session asserts every reply and byte it can, leaves
copies in /work for the test to compare with the seeds, and prints OK at the end.
Run by tests/it/memory_fs.rs.
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


def expect_error(cmd, reply, ftp):
    try:
        resp = ftp.sendcmd(cmd)
    except ftplib.error_perm as e:
        assert str(e) == reply, "%s: %s" % (cmd, e)
        return
    raise AssertionError("%s succeeded: %r" % (cmd, resp))


def retr_binary(ftp, path, rest=None):
    got = bytearray()
    expect(ftp.retrbinary("RETR " + path, got.extend, rest=rest), "226")
    return bytes(got)


def retr_ascii_raw(ftp, path):
    """RETR in TYPE A, returning the bytes exactly as they came over the wire."""
    expect(ftp.voidcmd("TYPE A"), "200")
    conn = ftp.transfercmd("RETR " + path)
    chunks = []
    while True:
        b = conn.recv(65536)
        if not b:
            break
        chunks.append(b)
    conn.close()
    expect(ftp.voidresp(), "226")
    return b"".join(chunks)


def stor_ascii_raw(ftp, path, wire):
    """STOR in TYPE A, sending `wire` as it is."""
    expect(ftp.voidcmd("TYPE A"), "200")
    conn = ftp.transfercmd("STOR " + path)
    conn.sendall(wire)
    conn.close()
    expect(ftp.voidresp(), "226")


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    ftp = ftplib.FTP()
    expect(ftp.connect(host, port, timeout=30), "220")
    expect(ftp.login("user", "12345"), "230")

    expect(ftp.sendcmd("MKD work"), "257")
    expect_error("MKD work", "550 File exists.", ftp)
    expect(ftp.sendcmd("CWD work"), "250")
    assert ftp.pwd() == "/work", ftp.pwd()

    # Binary, 10 MB each way: the seed down, then up again as a copy.
    big = retr_binary(ftp, "/seed/big.bin")
    assert len(big) == 10 * 1024 * 1024, len(big)
    expect(ftp.storbinary("STOR big_copy.bin", io.BytesIO(big)), "226")
    rnd = os.urandom(10 * 1024 * 1024)
    expect(ftp.storbinary("STOR rnd.bin", io.BytesIO(rnd)), "226")
    assert retr_binary(ftp, "rnd.bin") == rnd, "RETR returned other bytes"

    # ASCII, 10 MB: LF on the server, CRLF on the wire, both ways.
    lf = retr_binary(ftp, "/seed/text.txt")
    assert len(lf) >= 10 * 1024 * 1024 and b"\r" not in lf, len(lf)
    crlf = retr_ascii_raw(ftp, "/seed/text.txt")
    assert crlf == lf.replace(b"\n", b"\r\n"), "TYPE A RETR did not convert LF"
    stor_ascii_raw(ftp, "text_copy.txt", crlf)
    expect(ftp.voidcmd("TYPE I"), "200")
    assert retr_binary(ftp, "text_copy.txt") == lf, "TYPE A STOR did not convert CRLF"

    # Listings.
    assert ftp.nlst() == ["big_copy.bin", "rnd.bin", "text_copy.txt"], ftp.nlst()
    lines = []
    expect(ftp.retrlines("LIST", lines.append), "226")
    assert len(lines) == 3, lines
    assert all(l.startswith("-rw-r--r--   1 ") for l in lines), lines
    assert (" %d " % len(big)) in lines[0], lines[0]
    assert [l.split(" ")[-1] for l in lines] == ["big_copy.bin", "rnd.bin", "text_copy.txt"]
    facts = dict(ftp.mlsd("/"))
    assert facts["work"]["type"] == "dir", facts
    assert facts["seed"]["type"] == "dir", facts
    facts = dict(ftp.mlsd())
    assert facts["rnd.bin"]["type"] == "file", facts
    assert int(facts["rnd.bin"]["size"]) == len(rnd), facts
    assert facts["rnd.bin"]["perm"] == "radfwMT", facts

    # SIZE, MFMT, MDTM.
    expect(ftp.voidcmd("TYPE I"), "200")
    assert ftp.size("rnd.bin") == len(rnd)
    expect_error("SIZE /seed", "550 /seed is not retrievable.", ftp)
    resp = expect(ftp.sendcmd("MFMT 20200102030405 rnd.bin"), "213")
    assert resp == "213 Modify=20200102030405; /work/rnd.bin.", resp
    assert ftp.sendcmd("MDTM rnd.bin") == "213 20200102030405"
    lines = []
    ftp.retrlines("LIST rnd.bin", lines.append)
    assert len(lines) == 1 and " Jan 02  2020 rnd.bin" in lines[0], lines

    # REST: a resumed download, then a resumed upload.
    rest = 1234567
    assert retr_binary(ftp, "rnd.bin", rest=rest) == rnd[rest:], "REST+RETR"
    expect(ftp.voidcmd("TYPE I"), "200")
    expect(ftp.storbinary("STOR part.bin", io.BytesIO(big[:1000000])), "226")
    expect(ftp.storbinary("STOR part.bin", io.BytesIO(big[1000000:3000000]), rest=1000000), "226")
    # APPE adds at the end.
    expect(ftp.storbinary("APPE part.bin", io.BytesIO(big[5000000:5100000])), "226")
    assert ftp.size("part.bin") == 3100000

    # Rename, delete.
    expect(ftp.sendcmd("RNFR rnd.bin"), "350")
    expect(ftp.sendcmd("RNTO renamed.bin"), "250")
    expect_error("RNFR rnd.bin", "550 No such file or directory.", ftp)
    expect(ftp.sendcmd("DELE renamed.bin"), "250")
    expect_error("DELE renamed.bin", "550 No such file or directory.", ftp)

    # Directories: RMD refuses a non-empty one.
    expect(ftp.sendcmd("MKD sub"), "257")
    expect(ftp.storbinary("STOR sub/x", io.BytesIO(b"x")), "226")
    expect_error("RMD sub", "550 Directory not empty.", ftp)
    expect_error("DELE sub", "550 Is a directory.", ftp)
    expect_error("CWD sub/x", "550 Not a directory.", ftp)
    expect(ftp.sendcmd("DELE sub/x"), "250")
    expect(ftp.sendcmd("RMD sub"), "250")

    # STOU with a prefix.
    conn, _ = ftp.ntransfercmd("STOU uniq")
    conn.sendall(b"unique data")
    conn.close()
    expect(ftp.voidresp(), "226")
    made = [n for n in ftp.nlst() if n.startswith("uniq.")]
    assert len(made) == 1, ftp.nlst()

    expect(ftp.quit(), "221")
    print("OK")


if __name__ == "__main__":
    main()
