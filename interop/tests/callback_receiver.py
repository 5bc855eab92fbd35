"""A partner's system for the asynchronous DCI tests: a real HTTP server on 127.0.0.1 that takes
the registry's callbacks (on-search, txn/on-status), checks each signature with the registry's
public key as docs/interoperability.md tells partners to, and answers as the test tells it."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from interop.dci.config import identity
from interop.dci.signatures import SignatureProblem, check_signature, parse_signature

CALLBACK_TOKEN = "partner-side-token-for-callbacks"


@dataclass
class Callback:
    path: str
    headers: dict
    body: bytes
    signature_ok: bool

    @property
    def envelope(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each callback with the next status in `answers` (then 200), with a DCI acknowledgement."""

    answers: list[int] = field(default_factory=list)
    received: list[Callback] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self, port: int = 0) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                envelope = None
                try:
                    envelope = json.loads(body)
                    me = identity()
                    check_signature(
                        parse_signature(envelope["signature"]),
                        header=envelope["header"],
                        message=envelope.get("message"),
                        public_key=me.public_key,
                        now=int(time.time()),
                    )
                    ok = True
                except (ValueError, KeyError, SignatureProblem):
                    ok = False
                with receiver._lock:
                    receiver.received.append(Callback(self.path, dict(self.headers.items()), body, ok))
                    status = receiver.answers.pop(0) if receiver.answers else 200
                correlation = ((envelope or {}).get("message") or {}).get("correlation_id", "") if ok else ""
                reply = json.dumps(
                    {
                        "message": {
                            "ack_status": "ACK",
                            "timestamp": "2026-01-01T00:00:00Z",
                            "correlation_id": correlation,
                        }
                    }
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format, *args):  # noqa: A002 (the base class's name)
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self._server = Server(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/spmis/dci"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
