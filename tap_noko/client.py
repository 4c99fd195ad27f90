"""The one base stream: auth, user agent, throttle, retries and Link paging.

Every request of a run goes through :meth:`NokoStream.fetch_page`, which is the
single place that spaces requests, retries what is transient, fails fast with
a clear message on what is not, and refuses to carry the token off-host.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import threading
import time
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import backoff
import msgspec
import requests
from singer_sdk import metrics
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers._util import utc_now
from singer_sdk.pagination import HeaderLinkPaginator
from singer_sdk.singerlib import RecordMessage
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import HTTPRequest, PageContext

from tap_noko.projection import Projector
from tap_noko.schema import load_schema

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

CREDENTIALS_HELP = (
    "Check the `token` setting (for Meltano: `meltano config tap-noko set token`): it must be a Noko personal "
    "access token, found under Integrations & Apps > Noko API > Personal Access Tokens. A token stops working when "
    "it is reset there or when its user is deactivated."
)


class NokoError(FatalAPIError):
    """A failure the user must act on; its text says what happened and what to do."""


class Throttle:
    """Spaces the start of every request of a run, across all streams.

    Noko allows 2 requests per second per address and drops what exceeds it,
    so we pace ourselves rather than lean on 429s. A ``Retry-After`` pushes the
    next start back for every stream, not only the one that was told.
    """

    def __init__(self, per_second: float) -> None:
        # 1 % slack: the server measures arrival times, which jitter on the way.
        self.interval = 1.0 / per_second * 1.01
        self._next_start = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self.interval
        if start > now:
            time.sleep(start - now)

    def defer(self, seconds: float) -> None:
        with self._lock:
            self._next_start = max(self._next_start, time.monotonic() + seconds)


class Run:
    """What every stream of one run shares: the throttle, and the server's clock at its first answer."""

    def __init__(self, max_requests_per_second: float) -> None:
        self.throttle = Throttle(max_requests_per_second)
        self.server_time: dt.datetime | None = None


@dataclass
class Page:
    """One answered request: its records and the headers paging needs."""

    records: list[dict[str, Any]]
    response: requests.Response

    @property
    def next_url(self) -> str | None:
        url: str | None = self.response.links.get("next", {}).get("url")
        return url

    @property
    def last_url(self) -> str | None:
        url: str | None = self.response.links.get("last", {}).get("url")
        return url

    @property
    def server_time(self) -> dt.datetime | None:
        raw = self.response.headers.get("Date")
        try:
            return parsedate_to_datetime(raw) if raw else None
        except (TypeError, ValueError):
            return None


class _TokenSafeSession(requests.Session):
    """requests strips ``Authorization`` on a cross-host redirect but not our header: strip it too."""

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]
        if self.should_strip_auth(response.request.url, prepared_request.url):  # type: ignore[no-untyped-call]
            prepared_request.headers.pop("X-NokoToken", None)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, f"{parts.hostname}:{port}"


def _redact(url: str) -> str:
    """An endpoint for messages: the path only, never a query that could hold a token."""
    return urlsplit(url).path or "/"


def _retry_after(exc: Exception) -> float:
    response = getattr(exc, "response", None)
    raw = response.headers.get("Retry-After") if response is not None else None
    if raw is None:
        return 0.0
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
        except (TypeError, ValueError):
            return 0.0


TRANSIENT = (
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class NokoStream(RESTStream[Any]):
    """Base stream: a subclass names its stream and path; entries also overrides ``read``."""

    primary_keys = ("id",)
    #: The wait between tries of one request doubles up to this; all its tries stop after the budget.
    MAX_BACKOFF_SECONDS = 60.0
    RETRY_BUDGET_SECONDS = 300.0

    def __init__(self, tap: Tap, run: Run) -> None:
        super().__init__(tap=tap, schema=load_schema(self.name))
        self.run = run
        self._requests_session = _TokenSafeSession()
        self._request_counter: metrics.Counter | None = None

    # -- what a request looks like -------------------------------------------------
    @property
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @property
    def http_headers(self) -> dict[str, str]:
        return {"X-NokoToken": str(self.config["token"]), "Accept": "application/json"}

    @property
    def timeout(self) -> int:
        return int(self.config["request_timeout"])

    def get_new_paginator(self) -> HeaderLinkPaginator:
        return HeaderLinkPaginator()

    def _check_origin(self, url: str) -> None:
        """A URL from Noko (a Link header) is requested only on the host the token belongs to."""
        if _origin(url) != _origin(self.url_base):
            raise NokoError(
                f"Noko's Link header for the {self.name} stream points to {'://'.join(_origin(url))}, not to "
                f"{'://'.join(_origin(self.url_base))} where `api_url` points. tap-noko does not follow it, so that "
                "the token is never sent to another host. If Noko moved, set `api_url` to the new address."
            )

    def get_url_params(self, context: Context | None, next_page_token: Any) -> dict[str, Any]:
        return {"per_page": self.config["page_size"]}

    def get_url(self, context: Context | None) -> str:
        # The SDK would substitute {placeholders} from the config, token included: nothing of ours has any.
        return f"{self.url_base}{self.path}"

    # -- sending, with throttle and retries -------------------------------------------
    def fetch_page(self, prepared: requests.PreparedRequest, context: Context | None) -> Page:
        """Send one request, retrying what is transient; every try is throttled."""
        endpoint = _redact(prepared.url or self.path or "")
        tries: list[str] = []

        def send() -> Page:
            self.run.throttle.wait()
            try:
                response = self._request(prepared, context)
                return Page(self._decode(response), response)
            except TRANSIENT as exc:
                tries.append(self._describe(exc))
                if isinstance(exc, RetriableAPIError) and exc.response is not None:
                    self.run.throttle.defer(_retry_after(exc))
                raise

        retrying = backoff.on_exception(
            self._wait_generator,
            TRANSIENT,
            max_time=self.RETRY_BUDGET_SECONDS,
            max_tries=self.backoff_max_tries(),
            jitter=None,
            on_backoff=lambda details: self.logger.warning(
                "Noko %s: %s; retrying in %.1f s (try %d)", endpoint, tries[-1], details["wait"], details["tries"] + 1
            ),
            logger=None,
        )(send)
        try:
            page: Page = retrying()
        except TRANSIENT:
            raise NokoError(
                f"Noko kept failing on {endpoint} for the {self.name} stream: {len(tries)} tries over "
                f"{self.RETRY_BUDGET_SECONDS:.0f} s at most, the last one {tries[-1]}. The bookmark stays where the "
                "last completely read window left it, so the next run loses nothing: run again later, and check "
                "Noko's status page if it persists."
            ) from None
        if self.run.server_time is None:
            self.run.server_time = page.server_time
        return page

    def backoff_max_tries(self) -> int:
        return 30

    def _wait_generator(self) -> Generator[float, Exception | None, None]:
        """Doubling waits with jitter (between half and all of each), capped, never shorter than a Retry-After."""
        attempt = 0
        exc: Exception | None = yield 0.0  # primed by backoff
        while True:
            attempt += 1
            base = min(self.MAX_BACKOFF_SECONDS, 2.0**attempt)
            wait = random.uniform(base / 2, base)
            floor = _retry_after(exc) if exc is not None else 0.0
            exc = yield max(wait, floor)

    def _describe(self, exc: Exception) -> str:
        if isinstance(exc, RetriableAPIError) and exc.response is not None:
            return str(exc)
        return f"{type(exc).__name__} ({'timed out' if isinstance(exc, requests.Timeout) else 'connection failed'})"

    def _decode(self, response: requests.Response) -> list[dict[str, Any]]:
        try:
            body = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            raise RetriableAPIError(
                f"HTTP {response.status_code} with a body that is not JSON "
                f"({response.headers.get('Content-Type', 'no content type')}, {len(response.content)} bytes)",
                response,
            ) from None
        if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
            # A proxy's JSON error page, or a half-migrated account: not a list we can trust.
            raise RetriableAPIError(f"HTTP {response.status_code} with JSON that is not a list of objects", response)
        return body

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(f"HTTP {status} {self._error_detail(response)}", response)
        if status == HTTPStatus.UNAUTHORIZED:
            raise NokoError(f"Noko rejected the token (HTTP 401 on {_redact(response.url)}). {CREDENTIALS_HELP}")
        if status == HTTPStatus.FORBIDDEN:
            raise NokoError(
                f"Noko answered 403 Forbidden for the {self.name} stream ({_redact(response.url)}): "
                f"{self._error_detail(response)}. The token's user role may not see {self.name} (in Noko, "
                "contractors and coworkers see less; some lists need a supervisor or leader), or the account's plan "
                f"lacks the feature. Use a token of a user who can, or deselect the stream: "
                f"`meltano select tap-noko --rm {self.name} '*'`, or `\"selected\": false` in the catalog."
            )
        if status == HTTPStatus.NOT_FOUND:
            raise NokoError(
                f"Noko answered 404 Not Found for {_redact(response.url)} ({self.name} stream): `api_url` is "
                f"probably wrong. It is {self.url_base!r}; for Noko it is https://api.nokotime.com/v2."
            )
        if status >= HTTPStatus.BAD_REQUEST:
            raise NokoError(
                f"Noko refused the request for the {self.name} stream with HTTP {status} on "
                f"{_redact(response.url)}: {self._error_detail(response)}."
            )

    @staticmethod
    def _error_detail(response: requests.Response) -> str:
        try:
            message = response.json().get("message")
        except (ValueError, AttributeError):
            message = None
        if message:
            return str(message)
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        return f"{response.reason or 'error'} ({kind}, {len(response.content)} bytes)"

    # -- records ------------------------------------------------------------------------
    def request_page(
        self, context: Context | None, *, params: Mapping[str, Any] | None = None, url: str | None = None
    ) -> Page:
        """The first page of a list query (``per_page`` plus ``params``), or the page at ``url`` as given."""
        if url is None:
            request = self.get_http_request(page=PageContext(stream_context=context, next_page_token=None))
            request.params = {**request.params, **(params or {})}
        else:
            self._check_origin(url)
            request = HTTPRequest(url=url, headers=self.http_headers)
        prepared = self.build_prepared_request(
            method=request.method, url=request.url, params=request.encode_params(), headers=request.headers
        )
        page = self.fetch_page(prepared, context)
        if self._request_counter is not None:
            self._request_counter.increment()
        return page

    def follow(self, context: Context | None, page: Page) -> Iterator[Page]:
        """The pages after ``page``, by ``Link: rel="next"`` until there is none."""
        paginator = self.get_new_paginator()
        paginator.advance(page.response)
        while paginator.current_value is not None and not paginator.finished:
            page = self.request_page(context, url=paginator.current_value.geturl())
            yield page
            paginator.advance(page.response)

    def get_records(self, context: Context | None) -> Iterator[dict[str, Any]]:
        with self.get_http_request_counter() as counter:
            counter.with_context(context)
            self._request_counter = counter
            try:
                yield from self.read(context)
            finally:
                self._request_counter = None
                self._report_undeclared()

    # -- what each record goes through on its way out ------------------------------------
    @functools.cached_property
    def projector(self) -> Projector:
        """Built on first use, once the catalog's selection is known."""
        return Projector(self.schema, self.mask.__getitem__)

    def _generate_record_messages(self, record: dict[str, Any]) -> Generator[RecordMessage, None, None]:
        # Replaces the SDK's per-record type conformance and deselection walk (see projection.py).
        record = self.projector(record)
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=utc_now(),
                )

    def _report_undeclared(self) -> None:
        if self.projector.undeclared:
            fields = ", ".join(f"{name} ({count}×)" for name, count in sorted(self.projector.undeclared.items()))
            self.logger.warning(
                "Noko sent fields the %s schema does not declare; they were dropped: %s. A newer tap-noko may "
                "know them.",
                self.name,
                fields,
            )
            self.projector.undeclared.clear()

    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        """Every record of the list; streams with a smarter plan override this."""
        first = self.request_page(context)
        yield from first.records
        for page in self.follow(context, first):
            yield from page.records
