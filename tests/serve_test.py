#!/usr/bin/env python3
"""Robustness checks of `mmphate serve` over real sockets (standard library only).

Usage: serve_test.py MMPHATE_BINARY CASE
CASE: idle_connections | connection_bound | head_timeout | concurrent_downloads | ranges |
      malformed_requests. Each starts its own server on a free port, on a run directory it
      writes itself, and exits 0 when every check holds.
"""
import os
import random
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = sys.argv[1]
CASE = sys.argv[2]
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


class Server:
    def __init__(self, run_dir, *extra):
        self.proc = subprocess.Popen([BIN, "serve", run_dir, "--port", "0", "--quiet", *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("http://127.0.0.1:"):
            self.proc.kill()
            raise SystemExit("server did not start: " + line + self.proc.stderr.read().decode())
        self.port = int(line.strip().rstrip("/").rsplit(":", 1)[1])
        self.host = "127.0.0.1:%d" % self.port

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return s


def read_reply(s):
    """Everything until the server closes: (status or None, headers, body)."""
    data = bytearray()
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None, {}, bytes(data)
    lines = data[:end].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split(" ")[1]), headers, bytes(data[end + 4:])


def request(port, raw, timeout=10):
    s = connect(port, timeout)
    try:
        s.sendall(raw)
        return read_reply(s)
    finally:
        s.close()


def get(srv, path, headers=(), method="GET", timeout=10):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: " + srv.host] + ["%s: %s" % h for h in headers]
    return request(srv.port, ("\r\n".join(lines) + "\r\n\r\n").encode(), timeout)


def make_run(tmp, frames_bytes):
    run = os.path.join(tmp, "run")
    os.makedirs(os.path.join(run, "frames"), exist_ok=True)
    with open(os.path.join(run, "frames.jsonl"), "wb") as f:
        f.write(frames_bytes)
    open(os.path.join(run, "empty.txt"), "wb").close()
    return run


def small_frames():
    return b"".join(b'{"schema_version":1,"frame":%d,"pad":"%s"}\n' % (i, b"x" * (i % 50)) for i in range(400))


def served_ok(reply, want):
    status, headers, body = reply
    return status == 200 and headers.get("content-length") == str(len(want)) and body == want


def case_idle_connections(tmp):
    # 100 clients connect and say nothing, 20 more send half a request line; a real request
    # must still be answered, and promptly (the old server closed it at once: 64 threads busy).
    data = small_frames()
    srv = Server(make_run(tmp, data))
    idle = [connect(srv.port) for _ in range(100)]
    slow = [connect(srv.port) for _ in range(20)]
    for s in slow:
        s.sendall(b"GET /run/frames.jsonl HTTP/1.1\r\nHo")
    time.sleep(0.2)
    t0 = time.monotonic()
    try:
        reply = get(srv, "/run/frames.jsonl", timeout=5)
    except OSError as e:
        reply = (None, {}, repr(e).encode())
    dt = time.monotonic() - t0
    check(served_ok(reply, data), "real GET served while 120 idle/slow connections are open (%.3f s)" % dt)
    ok = 0
    for _ in range(10):
        try:
            ok += served_ok(get(srv, "/run/frames.jsonl", timeout=5), data)
        except OSError:
            pass
    check(ok == 10, "10 more GETs served, %d ok" % ok)
    for s in idle + slow:
        s.close()
    check(srv.alive(), "server still running")
    srv.stop()


def case_connection_bound(tmp):
    # With at most 16 connections, 100 idle ones must not lock a real client out: the one
    # waiting longest for its request makes way.
    data = small_frames()
    srv = Server(make_run(tmp, data), "--max-connections", "16")
    idle = [connect(srv.port) for _ in range(100)]
    time.sleep(0.2)
    ok = 0
    for _ in range(5):
        try:
            ok += served_ok(get(srv, "/run/frames.jsonl", timeout=5), data)
        except OSError:
            pass
    check(ok == 5, "5 GETs served past 100 idle connections with --max-connections 16, %d ok" % ok)
    closed = 0
    for s in idle:  # most idle ones were closed by the server to make room
        s.settimeout(0.01)
        try:
            closed += s.recv(1) == b""
        except (socket.timeout, OSError):
            pass
        s.close()
    check(closed >= 80, "idle connections evicted: %d of 100" % closed)
    srv.stop()


def case_head_timeout(tmp):
    # --head-timeout 1: a silent client is closed, a trickling one (a byte every 0.2 s, never
    # finishing) gets 408, both within about a second, and the server keeps serving.
    data = small_frames()
    srv = Server(make_run(tmp, data), "--head-timeout", "1")
    silent = connect(srv.port)
    trickle = connect(srv.port)
    trickle.sendall(b"GET /run/frames.jsonl HTTP/1.1\r\nX-Slow: ")
    t0 = time.monotonic()
    got = b""
    trickle.settimeout(0.2)
    while time.monotonic() - t0 < 5:
        try:
            trickle.send(b"a")
        except OSError:
            break
        try:
            chunk = trickle.recv(4096)
            got += chunk
            if not chunk:
                break
        except socket.timeout:
            pass
        except OSError:
            break
    dt_trickle = time.monotonic() - t0
    check(got.startswith(b"HTTP/1.1 408 "), "trickling client answered 408 (got %r)" % got[:40])
    check(dt_trickle < 3, "trickling client cut after %.2f s (deadline 1 s)" % dt_trickle)
    silent.settimeout(5)
    try:
        first = silent.recv(1)
    except OSError:
        first = b"error"
    dt_silent = time.monotonic() - t0
    check(first == b"" and dt_silent < 3, "silent client closed after %.2f s without a reply" % dt_silent)
    check(served_ok(get(srv, "/run/frames.jsonl"), data), "server still serves")
    srv.stop()


def case_concurrent_downloads(tmp):
    # 200 clients download a 4.4 MB file at the same moment; every reply must be whole (the
    # old server gave about 1 in 10 an empty reply).
    data = random.Random(7).randbytes(4_400_000)
    srv = Server(make_run(tmp, data))
    n = 200
    barrier = threading.Barrier(n)
    results = [None] * n

    def client(i):
        try:
            s = socket.socket()
            s.settimeout(60)
            barrier.wait()
            s.connect(("127.0.0.1", srv.port))
            s.sendall(("GET /run/frames.jsonl HTTP/1.1\r\nHost: %s\r\n\r\n" % srv.host).encode())
            head = bytearray()
            while b"\r\n\r\n" not in head:
                chunk = s.recv(65536)
                if not chunk:
                    break
                head += chunk
            end = head.find(b"\r\n\r\n")
            if end < 0:
                results[i] = "empty or cut head (%d bytes)" % len(head)
                return
            lines = head[:end].decode("latin-1").split("\r\n")
            length = [l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("content-length:")]
            if not lines[0].startswith("HTTP/1.1 200 ") or length != [str(len(data))]:
                results[i] = "bad head: %r" % lines
                return
            view = memoryview(data)
            pos = len(head) - end - 4
            good = view[:pos] == head[end + 4:]
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                good = good and view[pos:pos + len(chunk)] == chunk
                pos += len(chunk)
            s.close()
            results[i] = True if good and pos == len(data) else "body: %d of %d bytes, equal=%s" % (pos, len(data), good)
        except Exception as e:  # noqa: BLE001 - every failure is a result here
            results[i] = repr(e)

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    bad = [r for r in results if r is not True]
    for r in bad[:5]:
        print("   ", r)
    check(not bad, "%d concurrent downloads of %d bytes complete and exact: %d bad (%.1f s)" % (n, len(data), len(bad), dt))
    check(srv.alive(), "server still running")
    srv.stop()


def case_ranges(tmp):
    data = small_frames()
    size = len(data)
    srv = Server(make_run(tmp, data))
    huge = "9" * 30

    def rng(value, method="GET", path="/run/frames.jsonl"):
        return get(srv, path, [("Range", value)] if value is not None else [], method)

    def partial(value, a, b):
        status, h, body = rng(value)
        check(status == 206 and body == data[a:b + 1] and h.get("content-length") == str(b - a + 1) and
              h.get("content-range") == "bytes %d-%d/%d" % (a, b, size), "%r -> 206 bytes %d-%d (got %s %r)" %
              (value, a, b, status, h.get("content-range")))

    def unsatisfiable(value, path="/run/frames.jsonl", total=size):
        status, h, body = rng(value, path=path)
        check(status == 416 and h.get("content-range") == "bytes */%d" % total and
              h.get("content-length") == str(len(body)), "%r -> 416 bytes */%d (got %s %r, length %r)" %
              (value, total, status, h.get("content-range"), h.get("content-length")))

    def whole(value, why):
        status, h, body = rng(value)
        check(status == 200 and body == data and h.get("content-length") == str(size) and "content-range" not in h,
              "%r -> 200 whole file, %s (got %s)" % (value, why, status))

    partial("bytes=2-11", 2, 11)
    partial("bytes=0-0", 0, 0)
    partial("bytes=%d-" % (size - 5), size - 5, size - 1)
    partial("bytes=5-", 5, size - 1)
    partial("bytes=-10", size - 10, size - 1)
    partial("bytes=-%d" % (size + 100), 0, size - 1)          # suffix longer than the file
    partial("bytes=10-%d" % (size + 1000), 10, size - 1)      # end beyond the file: clamped
    partial("bytes=0-" + huge, 0, size - 1)                    # huge end: clamped, no overflow
    partial("BYTES=2-11", 2, 11)                               # the unit is case-insensitive
    unsatisfiable("bytes=50-10")                               # last before first
    unsatisfiable("bytes=%d-" % size)                          # start at the end
    unsatisfiable("bytes=%d-%d" % (size + 10, size + 20))      # start beyond the end
    unsatisfiable("bytes=" + huge + "-")                       # huge start
    unsatisfiable("bytes=-0")                                  # empty suffix
    unsatisfiable("bytes=0-", "/run/empty.txt", 0)             # nothing to select in an empty file
    for bad in ["bytes=abc", "bytes=1-2-3", "bytes= 1-2", "bytes=--5", "bytes=", "bytes=-", "bytes=1a-2",
                "items=0-1", "bytes 0-1", "bytes=+1-2", "bytes=0x10-20"]:
        whole(bad, "malformed: ignored")
    whole("bytes=0-1,5-9", "several ranges: ignored")
    whole("bytes=0-1, 5-9", "several ranges: ignored")
    status, h, _ = get(srv, "/run/frames.jsonl", [("Range", "bytes=0-1"), ("Range", "bytes=2-3")])
    check(status == 200 and h.get("content-length") == str(size), "two Range fields -> 200 whole file (got %s)" % status)
    status, h, body = rng("bytes=2-11", "HEAD")
    check(status == 206 and h.get("content-length") == "10" and body == b"", "HEAD with a range -> 206 headers only")
    status, h, body = rng("bytes=50-10", "HEAD")
    check(status == 416 and h.get("content-range") == "bytes */%d" % size and body == b"", "HEAD 50-10 -> 416")
    status, h, body = rng(None, path="/run/empty.txt")
    check(status == 200 and h.get("content-length") == "0" and body == b"", "empty file -> 200, length 0")
    srv.stop()


def case_malformed_requests(tmp):
    data = small_frames()
    srv = Server(make_run(tmp, data))
    host = srv.host.encode()
    cases = [
        (b"GET /run/frames.jsonl HTTP/1.1\r\n\r\n", 400, "no Host in HTTP/1.1"),
        (b"GET /run/frames.jsonl HTTP/1.1\r\nHost: " + host + b"\r\nHost: " + host + b"\r\n\r\n", 400, "two Host fields"),
        (b"GET  /run/frames.jsonl HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", 400, "double space in the request line"),
        (b"GET /run/frames.jsonl\r\nHost: " + host + b"\r\n\r\n", 400, "no version"),
        (b"GET /run/frames.jsonl HTTP/2.0\r\nHost: " + host + b"\r\n\r\n", 505, "HTTP/2.0"),
        (b"GET /run/frames.jsonl FOO/1.1\r\nHost: " + host + b"\r\n\r\n", 400, "not HTTP"),
        (b"GET /run/fr\x00ames.jsonl HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", 400, "NUL in the target"),
        (b"GET /run/frames.jsonl HTTP/1.1\r\nHost: " + host + b"\r\nX: a\x00b\r\n\r\n", 400, "NUL in a value"),
        (b"GET /run/frames.jsonl HTTP/1.1\r\nHost: " + host + b"\r\nBad Name: x\r\n\r\n", 400, "space in a name"),
        (b"GET /run/frames.jsonl HTTP/1.1\r\nHost: " + host + b"\r\nX: a\r\n  folded\r\n\r\n", 400, "line folding"),
        (b"GET /run/frames.jsonl HTTP/1.1\r\nHost: " + host + b"\r\nX: a\rb\r\n\r\n", 400, "bare CR"),
        (b"GET /run/frames.jsonl HTTP/1.1\r\nHost: " + host + b"\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431, "20 kB field"),
        (b"GET /run/frames.jsonl HTTP/1.1\r\nHost: " + host + b"\r\n" + b"X: y\r\n" * 200 + b"\r\n", 431, "200 fields"),
        (b"GET * HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", 400, "asterisk target"),
        (b"G(T /run/frames.jsonl HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", 400, "method not a token"),
        (b"\r\nGET /run/frames.jsonl HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", 400, "empty request line"),
        (b"GET /run/%zz HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", 404, "bad percent escape"),
        (b"GET /run/%00 HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", 404, "encoded NUL"),
        (b"GET /run/frames.jsonl HTTP/1.1\nHost: " + host + b"\n\n", 200, "bare LF line ends accepted"),
        (b"GET /run/frames.jsonl HTTP/1.0\r\n\r\n", 403, "HTTP/1.0 without Host: not our Host"),
    ]
    for raw, want, what in cases:
        try:
            status, h, body = request(srv.port, raw, timeout=5)
        except OSError as e:
            status, h, body = None, {}, repr(e).encode()
        check(status == want and h.get("content-length") == str(len(body)),
              "%s -> %d (got %s)" % (what, want, status))
    # A client that sends far more than a head, without ever ending it, is refused, not buffered.
    s = connect(srv.port)
    s.settimeout(5)
    try:
        s.sendall(b"GET /run/frames.jsonl HTTP/1.1\r\nHost: " + host + b"\r\nX: " + b"a" * 200_000)
    except OSError:
        pass
    try:
        status = read_reply(s)[0]
    except OSError:
        status = "reset"
    s.close()
    check(status in (431, "reset"), "200 kB unterminated head -> 431 (got %s)" % status)
    check(served_ok(get(srv, "/run/frames.jsonl"), data) and srv.alive(), "server still serves")
    srv.stop()


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}
if CASE not in CASES:
    raise SystemExit("unknown case %r (cases: %s)" % (CASE, ", ".join(CASES)))
with tempfile.TemporaryDirectory() as tmp:
    CASES[CASE](tmp)
print("%s: %s" % (CASE, "%d failed" % len(failures) if failures else "all passed"))
sys.exit(1 if failures else 0)
