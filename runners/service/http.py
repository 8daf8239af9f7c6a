"""The service's HTTP endpoint: /healthz, /metrics (Prometheus), /status (HTML), /status.json."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StatusServer:
    """Serves pages produced by callables; runs in a daemon thread."""

    def __init__(self, host: str, port: int, pages: dict[str, Callable[[], tuple[int, str, str]]],
                 under: dict[str, Callable[[str], tuple[int, str, str]]] | None = None) -> None:
        routes = pages
        prefixes = under or {}  # "/runs/" -> page of the rest of the path ("/runs/12" -> "12")

        def route(path: str) -> Callable[[], tuple[int, str, str]] | None:
            if path in routes:
                return routes[path]
            for prefix, page in prefixes.items():
                if path.startswith(prefix) and len(path) > len(prefix):
                    rest = path[len(prefix):]
                    return lambda: page(rest)
            return None

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                page = route(self.path.split("?")[0])
                if page is None:
                    code, kind, body = 404, "text/plain", "not found\n"
                else:
                    try:
                        code, kind, body = page()
                    except Exception as exc:  # the page must answer even when the ledger cannot
                        code, kind, body = 503, "text/plain", f"unavailable: {exc}\n"
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # access logs would drown the JSON logs

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="http")

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_page(payload: Callable[[], object]) -> Callable[[], tuple[int, str, str]]:
    return lambda: (200, "application/json", json.dumps(payload(), indent=2, default=str))
