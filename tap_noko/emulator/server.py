"""The HTTP side of the emulator: routing, auth, paging, rate limit, faults.

Strictness is deliberate. Where Noko's behaviour is undocumented the
emulator picks the answer that catches a sloppy client: a query parameter
sent twice is a 400, and with opaque links a hand-built ``page`` is ignored.
"""

from __future__ import annotations

import base64
import binascii
import collections
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from tap_noko.emulator.store import LISTS, SINGLES, BadFilterError, Store

DEFAULT_TOKEN = "noko-demo-token"  # noqa: S105 - the emulator's public demo token
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 1000
FAULT_KINDS = ("500", "502", "503", "504", "drop", "delay", "429", "truncate", "badjson")
MIGRATION_MESSAGE = "Your account is currently being migrated. Please try again in a few minutes."


@dataclass
class Faults:
    """Failure knobs. ``every[kind] = N`` makes every Nth API request fail that way."""

    every: dict[str, int] = field(default_factory=dict)
    delay_seconds: float = 2.0
    retry_after: int | None = None
    forbidden: set[str] = field(default_factory=set)
    opaque_links: bool = False
    #: Until this ``time.monotonic()`` value every API request gets 429.
    throttle_until: float = 0.0
    #: Every API request after this many answers 500 (0: never): a bad moment that lasts.
    fail_after: int = 0
    #: Link URLs point to this origin (``http://host:port``) instead of the emulator's own.
    link_origin: str | None = None
    #: Every API request is redirected (307) to this origin, path and query kept.
    redirect_to: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.every) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s) {sorted(unknown)}; choose from {', '.join(FAULT_KINDS)}")

    def throttle_for(self, seconds: float) -> None:
        self.throttle_until = time.monotonic() + seconds


@dataclass
class LoggedRequest:
    path: str
    query: str
    status: int
    user_agent: str | None
    token_header: bool
    #: time.monotonic() when the request arrived, and when its answer left (after any rate-limit wait)
    arrived: float
    answered: float


@dataclass
class Stats:
    """Counters tests assert on exactly."""

    requests: list[LoggedRequest] = field(default_factory=list)
    throttled: int = 0
    token_in_query: bool = False

    def paths(self) -> collections.Counter[str]:
        return collections.Counter(r.path for r in self.requests)

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": dict(self.paths()),
            "total": len(self.requests),
            "throttled": self.throttled,
            "token_in_query": self.token_in_query,
        }


class RateLimiter:
    """Noko's limit: 2 requests per second per address, 5 more may wait, the rest get 429."""

    def __init__(self, per_second: int = 2, max_waiting: int = 5) -> None:
        self.per_second, self.max_waiting = per_second, max_waiting
        self._slots: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def admit(self, client: str) -> float | None:
        """Seconds the request must wait for its slot, or None to reject it."""
        with self._lock:
            now = time.monotonic()
            slots = self._slots[client]
            while len(slots) > self.per_second and slots[0] <= now - 1.0:
                slots.popleft()
            slot = now
            if len(slots) >= self.per_second:
                slot = max(now, slots[-self.per_second] + 1.0)
            if slot > now and sum(1 for s in slots if s > now) >= self.max_waiting:
                return None
            slots.append(slot)
            return slot - now


@dataclass
class EntriesHook:
    """Edit or delete already-served entries when the Kth entries request arrives."""

    request: int
    edit: int = 0
    delete: int = 0
    done: bool = False


class NokoServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], *, store: Store, token: str, rate_limit: bool, faults: Faults) -> None:
        super().__init__(address, Handler)
        self.store, self.token, self.faults = store, token, faults
        self.limiter = RateLimiter() if rate_limit else None
        self.stats = Stats()
        self.hooks: list[EntriesHook] = []
        self.served_entries: set[int] = set()
        self.counter_lock = threading.Lock()
        self.api_requests = 0
        self.entries_requests = 0


class Handler(BaseHTTPRequestHandler):
    server: NokoServer
    protocol_version = "HTTP/1.1"
    _logged: tuple[str, str, float] | None = None
    server_version = "noko-emulator"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests and the demo read stdout, and the token may be in a URL."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(self.server.store.clock.timestamp() if timestamp is None else timestamp, usegmt=True)

    # -- plumbing ------------------------------------------------------------
    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self._log(status)
        self.send_response(status)
        if body or status != HTTPStatus.TOO_MANY_REQUESTS:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload, ensure_ascii=False).encode())

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"message": message, "errors": []})

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/_control/"):
            self._control(url.path.removeprefix("/_control/"), None)
        elif url.path.startswith("/v2/") or url.path == "/v2":
            self._api(url.path.removeprefix("/v2/"), url.query)
        else:
            self._error(HTTPStatus.NOT_FOUND, f"No route matches {url.path}")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        if url.path.startswith("/_control/"):
            self._control(url.path.removeprefix("/_control/"), json.loads(raw or b"{}"))
        else:
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "The emulator serves the read API only")

    # -- the API ---------------------------------------------------------------
    def _api(self, endpoint: str, query: str) -> None:
        self._logged = (endpoint, query, time.monotonic())
        status = self._api_inner(endpoint, query)
        if self._logged is not None:  # nothing was sent: the connection was dropped
            self._log(status)

    def _log(self, status: int) -> None:
        """Counted before the answer leaves, so a client that has its answer sees it counted."""
        if self._logged is None:
            return
        endpoint, query, arrived = self._logged
        self._logged = None
        with self.server.counter_lock:
            self.server.stats.requests.append(
                LoggedRequest(
                    path=endpoint,
                    query=query,
                    status=status,
                    user_agent=self.headers.get("User-Agent"),
                    token_header="X-NokoToken" in self.headers,
                    arrived=arrived,
                    answered=time.monotonic(),
                )
            )

    def _api_inner(self, endpoint: str, query: str) -> int:
        server, faults = self.server, self.server.faults
        if server.limiter is not None:
            wait = server.limiter.admit(self.client_address[0])
            if wait is None:
                return self._throttled(None)
            if wait > 0:
                time.sleep(wait)
        if time.monotonic() < faults.throttle_until:
            return self._throttled(faults.retry_after)
        with server.counter_lock:
            server.api_requests += 1
            number = server.api_requests
        if faults.redirect_to:
            self._send(HTTPStatus.TEMPORARY_REDIRECT, headers={"Location": faults.redirect_to + self.path})
            return HTTPStatus.TEMPORARY_REDIRECT
        if faults.fail_after and number > faults.fail_after:
            return self._fault("500") or HTTPStatus.INTERNAL_SERVER_ERROR
        for kind, every in faults.every.items():
            if every and number % every == 0:
                outcome = self._fault(kind)
                if outcome is not None:
                    return outcome
        pairs = parse_qsl(query, keep_blank_values=True)
        names = [name for name, _ in pairs]
        if "noko_token" in names:
            server.stats.token_in_query = True
        if not self.headers.get("User-Agent"):
            self._error(HTTPStatus.BAD_REQUEST, "A User-Agent header is required")
            return HTTPStatus.BAD_REQUEST
        token = self.headers.get("X-NokoToken") or dict(pairs).get("noko_token")
        if token != server.token:
            self._error(HTTPStatus.UNAUTHORIZED, "Invalid or missing personal access token")
            return HTTPStatus.UNAUTHORIZED
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            self._error(HTTPStatus.BAD_REQUEST, f"Query parameter(s) given more than once: {', '.join(twice)}")
            return HTTPStatus.BAD_REQUEST
        if endpoint in faults.forbidden:
            self._error(HTTPStatus.FORBIDDEN, "You don't have permission to access this resource")
            return HTTPStatus.FORBIDDEN
        if endpoint in SINGLES:
            self._send(HTTPStatus.OK, server.store.single(endpoint))
            return HTTPStatus.OK
        if endpoint not in LISTS:
            self._error(HTTPStatus.NOT_FOUND, f"Not found: /v2/{endpoint}")
            return HTTPStatus.NOT_FOUND
        params = dict(pairs)
        params.pop("noko_token", None)
        try:
            params = self._decode_cursor(params) if faults.opaque_links else params
            page = self._int_param(params, "page", 1)
            per_page = min(self._int_param(params, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
            if endpoint == "entries":
                self._run_hooks()
            result = server.store.page(endpoint, params, page, per_page)
        except BadFilterError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
            return HTTPStatus.BAD_REQUEST
        if endpoint == "entries":
            with server.counter_lock:
                server.served_entries.update(result.ids)
        links = self._links(endpoint, pairs, params, result.page, result.last_page)
        self._send(HTTPStatus.OK, result.body, headers={"Link": links})
        return HTTPStatus.OK

    def _int_param(self, params: dict[str, str], name: str, default: int) -> int:
        raw = params.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or int(raw) < 1:
            raise BadFilterError(f"{name} must be a positive integer, got {raw!r}")
        return int(raw)

    def _decode_cursor(self, params: dict[str, str]) -> dict[str, str]:
        """Opaque links: the cursor carries the query; a bare ``page`` is ignored."""
        cursor = params.pop("cursor", None)
        if cursor is None:
            params.pop("page", None)
            return params
        if params:
            raise BadFilterError(f"A cursor URL takes no other parameters, got {', '.join(sorted(params))}")
        try:
            decoded: dict[str, str] = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        except (binascii.Error, ValueError):
            raise BadFilterError("cursor is not valid") from None
        return decoded

    def _links(self, endpoint: str, pairs: list[tuple[str, str]], params: dict[str, str], page: int, last: int) -> str:
        """``pairs`` is the query as sent; ``params`` is what it asked for (a cursor already decoded)."""
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        base = f"{self.server.faults.link_origin or 'http://' + host}/v2/{endpoint}"

        def url(number: int) -> str:
            if self.server.faults.opaque_links:
                kept = {**params, "page": str(number)}
                token = base64.urlsafe_b64encode(json.dumps(kept).encode()).decode()
                return f"{base}?{urlencode({'cursor': token})}"
            kept_pairs = [(k, v) for k, v in pairs if k != "page"] + [("page", str(number))]
            return f"{base}?{urlencode(kept_pairs)}"

        rels = [("first", 1), ("last", last)]
        if page > 1:
            rels.insert(0, ("prev", page - 1))
        if page < last:
            rels.insert(0, ("next", page + 1))
        return ", ".join(f'<{url(n)}>; rel="{rel}"' for rel, n in rels)

    def _throttled(self, retry_after: int | None) -> int:
        with self.server.counter_lock:
            self.server.stats.throttled += 1
        self._send(HTTPStatus.TOO_MANY_REQUESTS, headers={"Retry-After": str(retry_after)} if retry_after else None)
        return HTTPStatus.TOO_MANY_REQUESTS

    def _fault(self, kind: str) -> int | None:
        """Answer as the fault says; None means carry on normally (after a delay)."""
        if kind == "500":
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error")
            return 500
        if kind in ("502", "504"):
            title = "502 Bad Gateway" if kind == "502" else "504 Gateway Time-out"
            self._send(
                int(kind),
                f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>".encode(),
                "text/html",
            )
            return int(kind)
        if kind == "503":
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, MIGRATION_MESSAGE)
            return 503
        if kind == "429":
            return self._throttled(self.server.faults.retry_after)
        if kind == "drop":
            self.close_connection = True
            return 0
        if kind == "delay":
            time.sleep(self.server.faults.delay_seconds)
            return None
        body = b'[{"id": 1, "date": "2024-01-01", "minutes": 6' + b"0" * 200 + b"]"
        if kind == "truncate":
            self._log(HTTPStatus.OK)
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body) * 2))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return 200
        self._send(HTTPStatus.OK, b"<html><body>Down for maintenance</body></html>", "text/html")  # badjson
        return 200

    def _run_hooks(self) -> None:
        server = self.server
        with server.counter_lock:
            server.entries_requests += 1
            number = server.entries_requests
        for hook in server.hooks:
            if hook.request == number and not hook.done:
                hook.done = True
                chosen = server.store.sample_ids(server.served_entries, hook.edit + hook.delete)
                server.store.edit_entries(ids=chosen[: hook.edit])
                server.store.delete_entries(ids=chosen[hook.edit :])

    # -- control API (outside /v2: neither rate limited nor authenticated) -------
    def _control(self, action: str, body: dict[str, Any] | None) -> None:
        server, store = self.server, self.server.store
        actions: dict[str, Callable[[dict[str, Any]], Any]] = {
            "stats": lambda _: server.stats.as_json(),
            "edit": lambda b: {"ids": store.edit_entries(int(b.get("count", 1)))},
            "delete": lambda b: {"ids": store.delete_entries(int(b.get("count", 1)))},
            "add": lambda b: {"ids": store.add_entries(int(b.get("count", 1)))},
            "clock": lambda b: _advance_clock(store, float(b.get("advance", 0))),
            "hook": lambda b: _add_hook(server, EntriesHook(**b)),
            "faults": lambda b: _set_faults(server, b),
            "entries": lambda _: store.entries(),
        }
        if action not in actions or (body is None and action not in ("stats", "entries")):
            self._error(HTTPStatus.NOT_FOUND, f"Unknown control action {action!r} (GET stats/entries; POST the others)")
            return
        try:
            self._json(HTTPStatus.OK, actions[action](body or {}))
        except (TypeError, ValueError) as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))


def _advance_clock(store: Store, seconds: float) -> dict[str, float]:
    store.clock.advance(seconds)
    return {"offset": store.clock.offset}


def _add_hook(server: NokoServer, hook: EntriesHook) -> dict[str, int]:
    server.hooks.append(hook)
    return {"hooks": len(server.hooks)}


def _set_faults(server: NokoServer, body: dict[str, Any]) -> dict[str, Any]:
    throttle_for = body.pop("throttle_for", None)
    if "forbidden" in body:
        body["forbidden"] = set(body["forbidden"])
    server.faults = Faults(**body)
    if throttle_for:
        server.faults.throttle_for(float(throttle_for))
    result = asdict(server.faults)
    result["forbidden"] = sorted(result["forbidden"])
    return result
