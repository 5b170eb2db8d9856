"""A real HTTP receiver on loopback for notification tests: records every request; can answer
500 to the first N requests, or hold each request for a while before answering."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, fail_first: int = 0, hold_seconds: float = 0.0,
                 redirect_to: str | None = None):
        """``redirect_to``: answer every request with a 307 to that URL (which resends the
        body to it, if the sender follows)."""
        self.requests: list[dict] = []  # {"path", "headers", "body", "at"}
        self.attempts = 0
        self.fail_first, self.hold_seconds = fail_first, hold_seconds
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with threading.Lock():
                    owner.attempts += 1
                    failing = owner.attempts <= owner.fail_first
                if owner.hold_seconds:
                    time.sleep(owner.hold_seconds)
                if not failing:
                    owner.requests.append({"path": self.path, "headers": dict(self.headers),
                                           "body": body, "at": time.time()})
                self.send_response(307 if redirect_to else 500 if failing else 200)
                if redirect_to:
                    self.send_header("Location", redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [r["headers"].get("X-Raydeploy-Event") for r in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
