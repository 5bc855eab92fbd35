"""A partner agency's system for the delivery tests: a real HTTP server on
127.0.0.1 that checks each request the way `docs/delivery.md` tells agencies
to, and answers as the test tells it. Also builders for an agency that
receives by push, its programme, and a household to refer."""

import datetime
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from programmes.models import (
    Agency,
    AgencyKind,
    AutoReferral,
    Programme,
    ProgrammeDistrict,
    ProgrammeKind,
    ProgrammeStatus,
    ReferralDelivery,
)
from referrals.delivery import SIGNATURE_TOLERANCE_SECONDS, signature_is_valid
from registry.models import Household, Location, Relationship
from registry.services import MemberInput, household_register

SECRET = "agency-shared-secret-for-tests"


@dataclass
class Received:
    headers: dict
    body: bytes
    signature_ok: bool

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each request with the next status in `answers` (then 200); waits `delay` seconds first."""

    secret: str = SECRET
    answers: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    # Keys already acted on: a repeat is acknowledged and not acted on again.
    processed: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def start(self, port: int = 0) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = signature_is_valid(
                    receiver.secret,
                    self.headers.get("X-SPF-Timestamp", ""),
                    body,
                    self.headers.get("X-SPF-Signature", ""),
                    now=time.time(),
                    tolerance=SIGNATURE_TOLERANCE_SECONDS,
                )
                with receiver._lock:
                    receiver.received.append(Received(dict(self.headers.items()), body, ok))
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    key = self.headers.get("Idempotency-Key", "")
                    if ok and 200 <= status < 300 and key not in receiver.processed:
                        receiver.processed.append(key)
                if receiver.delay:
                    receiver._stopping.wait(receiver.delay)
                if not ok:
                    status = 401
                reply = json.dumps({"ok": 200 <= status < 300}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format, *args):  # noqa: A002 (the base class's name)
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # The sender gave up (a timeout test) before the answer was written.
                pass

        self._server = Server(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/spf/referrals"

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def free_port() -> int:
    """A port nothing listens on (yet): connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def push_agency(*, url: str, secret: str = SECRET, code: str = "NHIMA") -> Agency:
    return Agency.objects.create(
        code=code,
        name="National Health Insurance Management Authority",
        kind=AgencyKind.DEPARTMENT,
        referral_delivery=ReferralDelivery.WEBHOOK,
        webhook_url=url,
        webhook_secret=secret,
    )


def programme_of(agency: Agency, *, district: Location, code: str = "HIW") -> Programme:
    programme = Programme.objects.create(
        code=code,
        name="Health insurance waiver",
        agency=agency,
        description="Premium waived for poor households",
        kind=ProgrammeKind.CASH_TRANSFER,
        status=ProgrammeStatus.ACTIVE,
        currency="ZMW",
        referral_sla_days=14,
        auto_referral=AutoReferral.OFF,
    )
    ProgrammeDistrict.objects.create(programme=programme, district=district)
    return programme


def household_in(village: Location, *, officer, last_name: str = "Mwansa") -> Household:
    return household_register(
        acting_user=officer,
        village=village,
        duplicates_confirmed=True,
        members=[
            MemberInput(
                values={
                    "first_name": "Mary",
                    "last_name": last_name,
                    "sex": "F",
                    "relationship": Relationship.HEAD,
                    "date_of_birth": datetime.date(1970, 1, 1),
                }
            ),
            MemberInput(
                values={
                    "first_name": "Bupe",
                    "last_name": last_name,
                    "sex": "F",
                    "relationship": Relationship.CHILD,
                    "date_of_birth": datetime.date(2015, 1, 1),
                }
            ),
        ],
    )
