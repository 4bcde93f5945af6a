#!/usr/bin/env python3
"""A fault-injecting reverse proxy for registry e2e tests (stdlib only, loopback only).

Sits in front of one registry (plain HTTP upstream) and forwards every request, streaming request
and response bodies (Content-Length or chunked), keeping the client's Host header, and rewriting
absolute Location headers that point at the upstream so the client keeps talking to the proxy.

Faults (all bounded by --max-faults, 0 = unbounded):
  --fail-every N --status S   every Nth matching request gets status S (500, 503, 429 + Retry-After)
                              without reaching the registry (its body is read and discarded)
  --drop-upload-after BYTES   a PATCH/PUT/POST whose body reaches BYTES is cut: the first BYTES are
                              forwarded, then both connections are reset (TCP RST), no response
  --delay-ms MS               every matching request waits MS before it is forwarded (a fault
                              of kind "delay", so --max-faults bounds it too)
  --throttle-bps BPS          request and response bodies are paced to BPS bytes per second
  --corrupt-blobs             200/206 bodies of GET .../blobs/sha256:... get one byte flipped
  --methods GET,HEAD,...      only these methods are matched (default: all)
  --path-regex RE             only paths matching RE are matched (default: all)

Admin (same port, never forwarded):
  GET  /__proxy/stats         counters as JSON
  POST /__proxy/config        JSON object with any of the option names above (underscored:
                              fail_every, status, retry_after, drop_upload_after, delay_ms,
                              throttle_bps, corrupt_blobs, methods, path_regex, max_faults);
                              counters are reset. Returns the new config.
Each request is logged as one JSON line to --log.
"""
import argparse
import http.client
import json
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "trailers", "transfer-encoding", "upgrade", "expect", "proxy-connection"}
BLOB_GET = re.compile(r"^/v2/.+/blobs/sha256:[0-9a-f]{64}$")
UPLOAD_METHODS = {"PATCH", "PUT", "POST"}
PIECE = 64 * 1024


class Dropped(Exception):
    pass


def default_config():
    return {"fail_every": 0, "status": 503, "retry_after": "1", "drop_upload_after": -1, "delay_ms": 0,
            "throttle_bps": 0, "corrupt_blobs": False, "methods": [], "path_regex": "", "max_faults": 0}


class State:
    def __init__(self, cfg, upstream, log_path):
        self.lock = threading.Lock()
        self.upstream = upstream  # (host, port)
        self.log_path = log_path
        self.set_config(cfg)

    def set_config(self, cfg):
        with self.lock:
            self.cfg = cfg
            self.matched = 0
            self.faults = 0
            self.stats = {"requests": 0, "matched": 0, "faults": 0, "by_kind": {}, "by_method": {}}

    def take_fault(self, kind):
        """Counts one fault of `kind` unless max_faults is reached; returns whether to inject it."""
        with self.lock:
            mx = self.cfg["max_faults"]
            if mx and self.faults >= mx:
                return False
            self.faults += 1
            self.stats["faults"] += 1
            self.stats["by_kind"][kind] = self.stats["by_kind"].get(kind, 0) + 1
            return True

    def log(self, entry):
        with self.lock:
            with open(self.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "e2e-fault-proxy/1"

    def log_message(self, fmt, *args):
        pass

    # ---- request body -------------------------------------------------------------------------
    def body_pieces(self):
        """Yields the client's request body in pieces, undoing chunked transfer encoding."""
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise Dropped("client closed inside a chunked body")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(4096)
                        if not t or t in (b"\r\n", b"\n"):
                            return
                left = size
                while left:
                    data = self.rfile.read(min(left, PIECE))
                    if not data:
                        raise Dropped("client closed inside a chunk")
                    left -= len(data)
                    yield data
                self.rfile.readline(16)  # CRLF after the chunk
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                data = self.rfile.read(min(left, PIECE))
                if not data:
                    raise Dropped("client closed inside the body")
                left -= len(data)
                yield data

    def has_body(self):
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower() or \
            int(self.headers.get("Content-Length") or 0) > 0

    # ---- helpers --------------------------------------------------------------------------------
    def pace(self, n, bps):
        if bps > 0 and n > 0:
            time.sleep(n / bps)

    def reset_client(self):
        """Closes the client connection with a TCP RST, in the middle of whatever it was doing."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()  # drop the makefile() reference so close() really closes the socket
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def reply_json(self, code, obj, extra=()):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def rewrite_location(self, value):
        host, port = self.server.state.upstream
        u = urllib.parse.urlsplit(value)
        if u.scheme in ("http", "https") and u.hostname in (host, "localhost", "127.0.0.1") and u.port == port:
            me = self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]
            return urllib.parse.urlunsplit(("http", me, u.path, u.query, u.fragment))
        return value

    # ---- admin ----------------------------------------------------------------------------------
    def admin(self):
        st = self.server.state
        if self.path.startswith("/__proxy/stats"):
            with st.lock:
                out = dict(st.stats, config=st.cfg)
            self.reply_json(200, out)
        elif self.path.startswith("/__proxy/config") and self.command == "POST":
            raw = b"".join(self.body_pieces())
            cfg = default_config()
            cfg.update(json.loads(raw or b"{}"))
            unknown = set(cfg) - set(default_config())
            if unknown:
                self.reply_json(400, {"error": "unknown options %s" % sorted(unknown)})
                return
            st.set_config(cfg)
            self.reply_json(200, cfg)
        else:
            self.reply_json(404, {"error": "unknown admin path"})

    # ---- the proxy ------------------------------------------------------------------------------
    def handle_any(self):
        if self.path.startswith("/__proxy/"):
            return self.admin()
        st = self.server.state
        t0 = time.time()
        with st.lock:
            cfg = dict(st.cfg)
            st.stats["requests"] += 1
            st.stats["by_method"][self.command] = st.stats["by_method"].get(self.command, 0) + 1
            matches = (not cfg["methods"] or self.command in cfg["methods"]) and \
                (not cfg["path_regex"] or re.search(cfg["path_regex"], self.path) is not None)
            if matches:
                st.matched += 1
                st.stats["matched"] += 1
            n = st.matched
        entry = {"method": self.command, "path": self.path, "fault": None}
        try:
            self.forward(cfg, matches, n, entry)
        except Dropped as e:
            entry["fault"] = entry["fault"] or "client-dropped: %s" % e
            self.close_connection = True
        except (ConnectionError, BrokenPipeError, socket.timeout) as e:
            entry["error"] = repr(e)
            self.close_connection = True
        entry["ms"] = int((time.time() - t0) * 1000)
        st.log(entry)

    def forward(self, cfg, matches, n, entry):
        st = self.server.state
        if matches and cfg["delay_ms"] > 0 and st.take_fault("delay"):
            time.sleep(cfg["delay_ms"] / 1000.0)
            entry["delayed_ms"] = cfg["delay_ms"]

        # Injected status: the registry never sees the request.
        if matches and cfg["fail_every"] > 0 and n % cfg["fail_every"] == 0 and st.take_fault("status-%d" % cfg["status"]):
            for _ in self.body_pieces():
                pass
            extra = [("Retry-After", str(cfg["retry_after"]))] if cfg["status"] == 429 else []
            code = {429: "TOOMANYREQUESTS", 500: "UNKNOWN", 503: "UNAVAILABLE"}.get(cfg["status"], "UNKNOWN")
            self.reply_json(cfg["status"], {"errors": [{"code": code, "message": "injected by fault proxy"}]}, extra)
            entry["fault"] = "status-%d" % cfg["status"]
            entry["status"] = cfg["status"]
            return

        host, port = st.upstream
        conn = http.client.HTTPConnection(host, port, timeout=120)
        try:
            self.forward_to(conn, cfg, matches, entry)
        finally:
            conn.close()

    def forward_to(self, conn, cfg, matches, entry):
        st = self.server.state
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            if k.lower() not in HOP_BY_HOP:
                conn.putheader(k, v)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()

        drop_at = cfg["drop_upload_after"]
        may_drop = matches and drop_at >= 0 and self.command in UPLOAD_METHODS and self.has_body()
        sent = 0
        for piece in self.body_pieces():
            if may_drop and sent + len(piece) >= drop_at and st.take_fault("drop-upload"):
                head = piece[:max(0, drop_at - sent)]
                if head:
                    conn.send(b"%x\r\n%s\r\n" % (len(head), head) if chunked else head)
                sent += len(head)
                entry["fault"] = "drop-upload"
                entry["req_bytes"] = sent
                try:  # the registry sees the body end early too
                    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
                conn.close()
                self.reset_client()
                return
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            sent += len(piece)
            self.pace(len(piece), cfg["throttle_bps"] if matches else 0)
        if chunked:
            conn.send(b"0\r\n\r\n")
        entry["req_bytes"] = sent

        try:
            resp = conn.getresponse()
        except (http.client.HTTPException, OSError) as e:
            entry["error"] = "upstream: %r" % e
            entry["status"] = 502
            self.reply_json(502, {"errors": [{"code": "UNKNOWN", "message": "fault proxy: upstream failed"}]})
            return
        entry["status"] = resp.status
        corrupt = (matches and cfg["corrupt_blobs"] and self.command == "GET" and resp.status in (200, 206)
                   and BLOB_GET.match(urllib.parse.urlsplit(self.path).path) is not None)

        self.send_response(resp.status, resp.reason)
        length = resp.getheader("Content-Length")
        bodiless = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        for k, v in resp.getheaders():
            lk = k.lower()
            if lk in HOP_BY_HOP or lk in ("server", "date"):
                continue
            if lk == "location":
                v = self.rewrite_location(v)
            self.send_header(k, v)
        out_chunked = not bodiless and length is None
        if out_chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if bodiless:
            return
        out = 0
        flipped = False
        while True:
            piece = resp.read(PIECE)
            if not piece:
                break
            if corrupt and not flipped and st.take_fault("corrupt-blob"):
                i = len(piece) // 2
                piece = piece[:i] + bytes([piece[i] ^ 0xFF]) + piece[i + 1:]
                flipped = True
                entry["fault"] = "corrupt-blob"
            corrupt = corrupt and not flipped
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if out_chunked else piece)
            out += len(piece)
            self.pace(len(piece), cfg["throttle_bps"] if matches else 0)
        if out_chunked:
            self.wfile.write(b"0\r\n\r\n")
        entry["resp_bytes"] = out

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the registry (plain HTTP)")
    ap.add_argument("--log", required=True)
    ap.add_argument("--fail-every", type=int, default=0)
    ap.add_argument("--status", type=int, default=503)
    ap.add_argument("--retry-after", default="1")
    ap.add_argument("--drop-upload-after", type=int, default=-1)
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--throttle-bps", type=int, default=0)
    ap.add_argument("--corrupt-blobs", action="store_true")
    ap.add_argument("--methods", default="")
    ap.add_argument("--path-regex", default="")
    ap.add_argument("--max-faults", type=int, default=0)
    a = ap.parse_args()
    host, _, port = a.upstream.rpartition(":")
    for h in (a.bind, host):
        if not (h.startswith("127.") or h in ("localhost", "::1")):
            raise SystemExit("fault_proxy.py works on loopback only, not %s" % h)
    cfg = default_config()
    cfg.update({"fail_every": a.fail_every, "status": a.status, "retry_after": a.retry_after,
                "drop_upload_after": a.drop_upload_after, "delay_ms": a.delay_ms, "throttle_bps": a.throttle_bps,
                "corrupt_blobs": a.corrupt_blobs, "methods": [m for m in a.methods.upper().split(",") if m],
                "path_regex": a.path_regex, "max_faults": a.max_faults})
    open(a.log, "a").close()
    srv = ThreadingHTTPServer((a.bind, a.port), Handler)
    srv.daemon_threads = True
    srv.state = State(cfg, (host, int(port)), a.log)
    print("fault proxy on %s:%d -> %s %s" % (a.bind, a.port, a.upstream, json.dumps(cfg)), file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
