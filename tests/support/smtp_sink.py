#!/usr/bin/python3
"""A real SMTP server (aiosmtpd) for the notify tests, on 127.0.0.1.

Every accepted message is written to DIR as N.eml (the DATA bytes as
received) and N.env (one "key: value" line each: helo, from, rcpt (one line
per accepted recipient), tls (yes/no), auth (user or -)), the .env file
last and atomically, so a test polling for *.env sees complete messages.
When the server listens it writes DIR/ready.

  smtp_sink.py --port P --dir DIR [--starttls|--require-starttls|--implicit-tls]
               [--auth USER:PASS] [--reject-rcpt ADDR]...

With a TLS option the sink makes a self-signed certificate for 127.0.0.1 and
localhost with `openssl req` (DIR/cert.pem, DIR/key.pem) unless it exists.
"""
import argparse
import os
import signal
import ssl
import subprocess
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", key, "-out", cert, "-days", "2",
             "-subj", "/CN=localhost",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


class Sink:
    def __init__(self, d, reject):
        self.dir = d
        self.reject = set(a.lower() for a in reject)
        self.n = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, opts):
        if address.lower() in self.reject:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.n += 1
            n = self.n
        base = os.path.join(self.dir, str(n))
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        lines = ["helo: %s" % session.host_name,
                 "from: %s" % envelope.mail_from]
        lines += ["rcpt: %s" % r for r in envelope.rcpt_tos]
        lines.append("tls: %s" % ("yes" if session.ssl else "no"))
        auth = session.auth_data
        lines.append("auth: %s" % (auth.login.decode() if auth else "-"))
        with open(base + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(base + ".tmp", base + ".env")
        return "250 2.0.0 queued as sink-%d" % n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--starttls", action="store_true")
    g.add_argument("--require-starttls", action="store_true")
    g.add_argument("--implicit-tls", action="store_true")
    ap.add_argument("--auth")
    ap.add_argument("--reject-rcpt", action="append", default=[])
    a = ap.parse_args()

    kw = {"hostname": "127.0.0.1", "port": a.port,
          "server_hostname": "sink.test"}
    if a.starttls or a.require_starttls:
        kw["tls_context"] = make_cert(a.dir)
        kw["require_starttls"] = a.require_starttls
    if a.implicit_tls:
        kw["ssl_context"] = make_cert(a.dir)
    if a.auth:
        user, pw = a.auth.split(":", 1)

        def check(server, session, envelope, mechanism, data):
            ok = (data.login.decode() == user and
                  data.password.decode() == pw)
            return AuthResult(success=ok, handled=False,
                              auth_data=data if ok else None)
        kw["authenticator"] = check
        kw["auth_required"] = True
        kw["auth_require_tls"] = False
    ctl = Controller(Sink(a.dir, a.reject_rcpt), **kw)
    ctl.start()
    with open(os.path.join(a.dir, "ready"), "w") as f:
        f.write("%d\n" % a.port)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    ctl.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
