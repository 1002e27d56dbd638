"""Fault injection on loopback: a proxy that fails the first calls, and a server that stalls.

These are the only test doubles of the LLM tests: everything else talks to a real
`transformers serve`.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _body(self) -> bytes:
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""


class _Background:
    """A ThreadingHTTPServer on 127.0.0.1:0 serving in a daemon thread."""

    handler: type[BaseHTTPRequestHandler]

    def start(self) -> _Background:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self) -> str:
        """The OpenAI-style base URL of this server."""
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> _Background:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _ProxyHandler(_Quiet):
    def do_GET(self) -> None:
        self._forward(b"")

    def do_POST(self) -> None:
        proxy: FaultProxy = self.server.owner  # type: ignore[attr-defined]
        body = self._body()
        with proxy.lock:
            proxy.bodies.append(json.loads(body or b"{}"))
            k = proxy.posts
            proxy.posts += 1
            proxy.inflight += 1
            proxy.max_inflight = max(proxy.max_inflight, proxy.inflight)
        try:
            if k < proxy.fail_first:
                payload = json.dumps({"error": {"message": f"injected failure {k + 1}"}}).encode()
                # Record before answering: the client may check the record as soon as it reads.
                proxy.statuses.append(proxy.status)
                self.send_response(proxy.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                if proxy.retry_after is not None:
                    self.send_header("retry-after", str(proxy.retry_after))
                self.end_headers()
                self.wfile.write(payload)
            else:
                time.sleep(proxy.delay)
                self._forward(body)
        finally:
            with proxy.lock:
                proxy.inflight -= 1

    def _forward(self, body: bytes) -> None:
        proxy: FaultProxy = self.server.owner  # type: ignore[attr-defined]
        up = urlsplit(proxy.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=300)
        headers = {"content-type": self.headers.get("content-type", "application/json")}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        proxy.statuses.append(resp.status)  # before answering, as above
        self.send_response(resp.status)
        self.send_header("content-type", resp.getheader("content-type", "application/json"))
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FaultProxy(_Background):
    """Forwards to `upstream` (``http://host:port``), answering the first `fail_first` POSTs with
    `status` instead (with a ``Retry-After`` header when `retry_after` is set), and delaying the
    others by `delay` seconds. Records every POST body, every status sent back, and the most
    requests it had in flight at once."""

    handler = _ProxyHandler

    def __init__(self, upstream: str, *, status: int = 429, fail_first: int = 0,
                 retry_after: float | None = None, delay: float = 0.0):
        self.upstream = upstream
        self.delay = delay
        self.status = status
        self.fail_first = fail_first
        self.retry_after = retry_after
        self.lock = threading.Lock()
        self.bodies: list[dict] = []
        self.statuses: list[int] = []
        self.posts = 0
        self.inflight = 0
        self.max_inflight = 0


class _StallHandler(_Quiet):
    def do_POST(self) -> None:
        stall: StallServer = self.server.owner  # type: ignore[attr-defined]
        self._body()
        with stall.lock:
            stall.requests += 1
        stall.release.wait(30)  # never answers while the test runs
        self.close_connection = True

    do_GET = do_POST


class StallServer(_Background):
    """Accepts requests and never answers them (until stopped)."""

    handler = _StallHandler

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.requests = 0

    def stop(self) -> None:
        self.release.set()
        super().stop()


class _HtmlHandler(_Quiet):
    def do_POST(self) -> None:
        self._body()
        page = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)


class HtmlServer(_Background):
    """Something that is not an OpenAI-compatible server: answers every POST with an HTML page."""

    handler = _HtmlHandler
