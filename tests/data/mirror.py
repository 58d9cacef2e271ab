"""A local HTTP mirror on 127.0.0.1 for the download tests: serves IDX files the test writes, and
misbehaves on request (404, wrong bytes, truncated, an HTML page, a stall, a transient 500)."""

from __future__ import annotations

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mlwork.data import download
from tests.data.test_idx import make_split_dir


class Mirror:
    """``Mirror(files)`` serves ``{name: bytes}`` at ``self.url``; ``self.faults[name]`` makes one
    file misbehave: ``"404"``, ``"wrong"`` (other bytes), ``"truncated"`` (the connection closes
    halfway through the announced length), ``"html"`` (an error page with status 200),
    ``"stall"`` (GET never answers; HEAD does), ``"flaky"`` (500 once, then the file).
    ``self.requests`` lists ``(method, path)`` of every request."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.faults, self.requests = dict(files), {}, []
        self.release = threading.Event()
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                mirror.requests.append(("HEAD", self.path))
                name = self.path.rsplit("/", 1)[-1]
                self.send_response(200 if name in mirror.files else 404)
                self.end_headers()

            def do_GET(self):
                mirror.requests.append(("GET", self.path))
                name = self.path.rsplit("/", 1)[-1]
                fault = mirror.faults.get(name)
                body = mirror.files.get(name)
                if body is None or fault == "404":
                    return self.send_error(404)
                if fault == "flaky":
                    mirror.faults.pop(name)
                    return self.send_error(500)
                if fault == "stall":
                    mirror.release.wait(30)
                    return
                if fault == "wrong":
                    body = body[::-1]
                if fault == "html":
                    body = b"<html><body>Moved. Please log in.</body></html>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if fault == "truncated" else body)
                if fault == "truncated":
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def gets(self) -> list[str]:
        return [path for method, path in self.requests if method == "GET"]

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class Silent:
    """A port that accepts connections (the kernel's backlog) and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"

    def close(self):
        self.sock.close()


def dead_url() -> str:
    """A 127.0.0.1 URL whose port refuses connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def idx_files(folder, name="mnist", monkeypatch=None, seed=0):
    """Write a small IDX data set into ``folder``; return ``({file: bytes}, arrays)``, and point
    the registry's hashes for ``name`` at these files when ``monkeypatch`` is given."""
    arrays = make_split_dir(folder, n_train=30, n_test=12, seed=seed)
    files = {f: (folder / f).read_bytes() for f in download.FILES}
    if monkeypatch is not None:
        monkeypatch.setitem(download.REGISTRY, name, {f: hashlib.sha256(b).hexdigest() for f, b in files.items()})
    return files, arrays
