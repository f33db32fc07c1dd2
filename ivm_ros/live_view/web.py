"""The web view's HTTP server (standard library only): the page, JPEG snapshots of each stream, the state as
JSON, and an instruction box that hands the typed text to a callback (the node publishes it).

Routes: ``GET /`` the page (:mod:`.page`, self-contained: works offline); ``GET /state.json``; ``GET
/frame/<stream>.jpg`` (404 until a first frame); ``POST /instruction`` with a JSON body ``{"text": ...}``.
The POST demands ``Content-Type: application/json``: a browser sends that cross-origin only after a CORS
preflight this server never answers, so another site's page cannot post instructions to a viewer on
localhost. Binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ivm_ros.inputs import InputRejected, check_instruction
from ivm_ros.live_view.page import PAGE
from ivm_ros.live_view.state import STREAMS, LiveState

#: Largest POST body read (an instruction is at most max_instruction_chars characters, 4 bytes each in UTF-8).
MAX_BODY = 1 << 16


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        """Quiet: one line per poll would flood the node's output."""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/state.json":
            self._json(HTTPStatus.OK, self.server.state.as_dict())
        elif path.startswith("/frame/") and path.endswith(".jpg") and path[7:-4] in STREAMS:
            found = self.server.state.jpeg(path[7:-4])
            if found is None:
                self._json(HTTPStatus.NOT_FOUND, {"error": "no frame yet"})
            else:
                self._send(HTTPStatus.OK, found[1], "image/jpeg")
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?", 1)[0] != "/instruction":
            return self._json(HTTPStatus.NOT_FOUND, {"error": "POST only to /instruction"})
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            return self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send JSON: {\"text\": ...}"})
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body of {length} bytes"})
        try:
            text = json.loads(self.rfile.read(length))["text"]
            if not isinstance(text, str):
                raise TypeError("text must be a string")
            text = check_instruction(text, self.server.max_instruction_chars)
        except InputRejected as exc:
            return self._json(HTTPStatus.BAD_REQUEST, {"error": exc.detail, "reason": exc.reason})
        except (ValueError, KeyError, TypeError) as exc:
            return self._json(HTTPStatus.BAD_REQUEST, {"error": f"bad request: {exc}"})
        self.server.on_instruction(text)
        return self._json(HTTPStatus.OK, {"published": text})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: LiveState, on_instruction: Callable[[str], None],
                 max_instruction_chars: int) -> None:
        super().__init__(address, _Handler)
        self.state, self.on_instruction, self.max_instruction_chars = state, on_instruction, max_instruction_chars


class WebView:
    """Serves ``state`` at http://host:port/ from a background thread (``port`` 0: any free port, see
    :attr:`port`); an instruction typed on the page goes to ``on_instruction`` after validation."""

    def __init__(self, state: LiveState, on_instruction: Callable[[str], None], host: str = "127.0.0.1",
                 port: int = 8080, max_instruction_chars: int = 1000) -> None:
        self.state = state
        self._server = _Server((host, port), state, on_instruction, max_instruction_chars)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="ivm_live_view_http", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}/"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
