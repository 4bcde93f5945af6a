#!/usr/bin/env python3
"""A small Docker/OCI registry token server for the e2e tests (loopback only).

Implements the token endpoint of the distribution "token" auth scheme:
  GET  /token?service=S&scope=repository:NAME:pull,push[&scope=...]   (Basic credentials optional)
  POST /token  (form: grant_type=password, username, password, service, scope)  — OAuth2 flavour
Alice (with the right password) is granted every action she asks for; anonymous clients only
`pull`; wrong credentials get 401. Tokens are RS256 JWTs whose header carries `x5c` (the signing
certificate, which the registry's `rootcertbundle` trusts) and a libtrust-style `kid`.

Every request is logged as one JSON line (never the password) to --log, so a test can count
token requests.

Usage: token_server.py --port P --key token.key --cert token.crt --issuer I --log requests.jsonl
       [--user alice:s3cret] [--expires-in 300] [--bind 127.0.0.1]
"""
import argparse
import base64
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(public_key) -> str:
    """The key ID libtrust (and so distribution 2.x) computes: SHA-256 of the DER SubjectPublicKeyInfo,
    first 240 bits, base32, in groups of four separated by ':'."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    s = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


class Signer:
    def __init__(self, key_path, cert_path):
        with open(key_path, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)
        with open(cert_path, "rb") as f:
            self.cert = x509.load_pem_x509_certificate(f.read())
        if isinstance(self.key, rsa.RSAPrivateKey):
            self.alg = "RS256"
        elif isinstance(self.key, ec.EllipticCurvePrivateKey):
            self.alg = "ES256"
        else:
            raise SystemExit("unsupported key type")
        self.kid = libtrust_key_id(self.cert.public_key())
        self.x5c = [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]

    def sign(self, claims: dict) -> str:
        header = {"typ": "JWT", "alg": self.alg, "kid": self.kid, "x5c": self.x5c}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode())).encode()
        if self.alg == "RS256":
            sig = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            der = self.key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
            r, s = utils.decode_dss_signature(der)
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signing_input.decode() + "." + b64url(sig)


def parse_scope(scope: str):
    """'repository:a/b:pull,push' -> ('repository', 'a/b', ['pull', 'push']); the name may contain ':'."""
    first = scope.find(":")
    last = scope.rfind(":")
    if first < 0 or last == first:
        return None
    return scope[:first], scope[first + 1:last], [a for a in scope[last + 1:].split(",") if a]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "e2e-token-server/1"

    def log_message(self, fmt, *args):  # keep stderr quiet; requests go to the JSON log
        pass

    def _reply(self, code, body: dict, extra_headers=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _log(self, entry):
        cfg = self.server.cfg
        entry["time"] = round(time.time(), 3)
        with cfg.lock:
            cfg.count += 1
            with open(cfg.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def _issue(self, method, params, username, password, basic_present):
        cfg = self.server.cfg
        service = params.get("service", [""])[0]
        scopes = []
        for raw in params.get("scope", []):
            scopes.extend(raw.split(" "))  # a client may put several scopes in one parameter
        if username is not None:
            if (username, password) != (cfg.user, cfg.password):
                self._log({"method": method, "account": username, "service": service, "scopes": scopes,
                           "result": "denied: bad credentials"})
                self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password"}]},
                            [("WWW-Authenticate", 'Basic realm="e2e-token-server"')])
                return
            account = username
        else:
            account = ""
        access = []
        for sc in scopes:
            parsed = parse_scope(sc)
            if parsed is None:
                continue
            typ, name, actions = parsed
            if account == cfg.user:
                granted = actions
            else:
                granted = [a for a in actions if a == "pull"]
            if name in cfg.deny_repos:
                granted = []
            access.append({"type": typ, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": cfg.issuer, "sub": account, "aud": service or cfg.service,
            "exp": now + cfg.expires_in, "nbf": now - 10, "iat": now,
            "jti": b64url(os.urandom(12)), "access": access,
        }
        token = cfg.signer.sign(claims)
        self._log({"method": method, "account": account or "<anonymous>", "service": service,
                   "scopes": scopes, "granted": access, "basic_header": basic_present, "result": "ok"})
        self._reply(200, {"token": token, "access_token": token, "expires_in": cfg.expires_in,
                          "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})

    def _basic(self):
        auth = self.headers.get("Authorization", "")
        if not auth.lower().startswith("basic "):
            return None, None
        try:
            user, _, pw = base64.b64decode(auth[6:].strip()).decode().partition(":")
        except Exception:
            return "<undecodable>", None
        return user, pw

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/healthz":
            self._reply(200, {"ok": True, "requests": self.server.cfg.count})
            return
        if url.path != "/token":
            self._reply(404, {"error": "not found"})
            return
        params = urllib.parse.parse_qs(url.query)
        user, pw = self._basic()
        self._issue("GET", params, user, pw, user is not None)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1 << 20)).decode(errors="replace")
        if url.path != "/token":
            self._reply(404, {"error": "not found"})
            return
        params = urllib.parse.parse_qs(body)
        user, pw = self._basic()
        basic = user is not None
        if params.get("grant_type", [""])[0] == "password":
            user = params.get("username", [""])[0]
            pw = params.get("password", [""])[0]
        elif params.get("grant_type", [""])[0] == "refresh_token":
            # Refresh tokens are not issued (no offline_token support); refuse like a real server would.
            self._log({"method": "POST", "result": "denied: refresh_token unsupported"})
            self._reply(400, {"error": "unsupported_grant_type"})
            return
        self._issue("POST", params, user, pw, basic)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--key", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--issuer", default="e2e-token-issuer")
    ap.add_argument("--service", default="e2e-registry")
    ap.add_argument("--user", default="alice:s3cret")
    ap.add_argument("--expires-in", type=int, default=300)
    ap.add_argument("--deny-repo", action="append", default=[], help="repository for which nothing is granted")
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    if not args.bind.startswith("127.") and args.bind != "::1":
        raise SystemExit("token_server.py binds to loopback only")

    class Cfg:
        pass
    cfg = Cfg()
    cfg.signer = Signer(args.key, args.cert)
    cfg.issuer, cfg.service, cfg.expires_in, cfg.log = args.issuer, args.service, args.expires_in, args.log
    cfg.user, _, cfg.password = args.user.partition(":")
    cfg.deny_repos = set(args.deny_repo)
    cfg.lock = threading.Lock()
    cfg.count = 0
    open(cfg.log, "a").close()

    srv = ThreadingHTTPServer((args.bind, args.port), Handler)
    srv.daemon_threads = True
    srv.cfg = cfg
    print(f"token server on http://{args.bind}:{args.port}/token kid={cfg.signer.kid}", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
