"""A session with Python's ftplib through the balancer of tests/it/haproxy.rs.

Usage: python3 haproxy_session.py HOST PORT SOURCE MODE NAME UPLOAD DOWNLOAD
Connects from the local address SOURCE (control and data connections alike), as FTP
(MODE "plain") or FTP_TLS with PROT P (MODE "tls"), in passive mode; uploads the file
UPLOAD as NAME, downloads NAME into DOWNLOAD, checks the listing; prints OK at the end.
The test compares the files.
"""

import ftplib
import ssl
import sys


def expect(resp, want):
    assert resp[:3] == want, "expected %s, got %r" % (want, resp)
    return resp


def main():
    host, port, source, mode, name, upload, download = sys.argv[1:8]
    if mode == "tls":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ftp = ftplib.FTP_TLS(context=ctx, timeout=20, source_address=(source, 0))
    else:
        ftp = ftplib.FTP(timeout=20, source_address=(source, 0))
    expect(ftp.connect(host, int(port)), "220")
    if mode == "tls":
        expect(ftp.auth(), "234")
    expect(ftp.login("user", "12345"), "230")
    if mode == "tls":
        expect(ftp.prot_p(), "200")
    ftp.set_pasv(True)
    with open(upload, "rb") as f:
        expect(ftp.storbinary("STOR " + name, f), "226")
    assert name in ftp.nlst(), ftp.nlst()
    with open(download, "wb") as f:
        expect(ftp.retrbinary("RETR " + name, f.write), "226")
    expect(ftp.quit(), "221")
    print("OK")


if __name__ == "__main__":
    main()
