"""An FTPS session with Python's ftplib.FTP_TLS against the server under test.

Usage: python3 ftps_session.py HOST PORT UPLOAD DOWNLOAD PROT
PROT is "p" (prot_p: TLS data connections) or "c" (prot_c: clear data connections).
Logs in over TLS, uploads UPLOAD as "big", lists it, downloads it in passive mode into
DOWNLOAD and again in active mode (compared in memory), deletes it; prints OK at the end.
Run by tests/it/tls.rs, which compares the files.
"""

import ftplib
import io
import ssl
import sys


def expect(resp, want):
    assert resp[:3] == want, "expected %s, got %r" % (want, resp)
    return resp


def main():
    host, port, upload, download, prot = sys.argv[1:6]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ftp = ftplib.FTP_TLS(context=ctx, timeout=20)
    expect(ftp.connect(host, int(port)), "220")
    expect(ftp.auth(), "234")
    expect(ftp.login("user", "12345"), "230")
    if prot == "p":
        expect(ftp.prot_p(), "200")
    else:
        # prot_c() sends no PBSZ; RFC 4217 (and pyftpdlib) want one before any PROT.
        expect(ftp.sendcmd("PBSZ 0"), "200")
        expect(ftp.prot_c(), "200")
    with open(upload, "rb") as f:
        expect(ftp.storbinary("STOR big", f), "226")
    lines = []
    expect(ftp.retrlines("LIST", lines.append), "226")
    assert any(l.endswith(" big") for l in lines), lines
    with open(download, "wb") as f:
        expect(ftp.retrbinary("RETR big", f.write), "226")
    with open(upload, "rb") as f:
        want = f.read()
    ftp.set_pasv(False)
    got = io.BytesIO()
    expect(ftp.retrbinary("RETR big", got.write), "226")
    assert got.getvalue() == want, "the active-mode download differs"
    ftp.set_pasv(True)
    assert ftp.nlst() == ["big"], ftp.nlst()
    expect(ftp.delete("big"), "250")
    expect(ftp.quit(), "221")
    print("OK")


if __name__ == "__main__":
    main()
