"""tap-noko: settings and the stream list."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import sys
from importlib.metadata import PackageNotFoundError, version
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.singerlib import Message, RecordMessage

from tap_noko.client import NokoStream, Run
from tap_noko.streams import EntriesStream, ProjectsStream, TagsStream, UsersStream

try:
    __version__ = version("tap-noko")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

DEFAULT_API_URL = "https://api.nokotime.com/v2"
MAX_PAGE_SIZE = 1000


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_start_date(value: str) -> dt.datetime:
    """A date (midnight UTC) or a date-time (UTC when no offset is given)."""
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def config_errors(config: dict[str, Any], properties: dict[str, Any]) -> list[str]:
    """One clear paragraph per problem, checked before any request is made.

    ``properties`` are the config schema's: the numeric settings are checked against their bounds.
    """
    errors = []
    token = config.get("token")
    if not isinstance(token, str) or not token.strip():
        errors.append(
            "The `token` setting is missing or empty. tap-noko needs a Noko personal access token (Noko: "
            "Integrations & Apps > Noko API > Personal Access Tokens). Set it with `meltano config tap-noko set "
            "token`, the TAP_NOKO_TOKEN environment variable, or `token` in the config file."
        )
    api_url = config.get("api_url", DEFAULT_API_URL)
    parts = urlsplit(api_url) if isinstance(api_url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        errors.append(
            f"The `api_url` setting must be an absolute URL such as {DEFAULT_API_URL}; got {api_url!r}. Leave it "
            "unset to use Noko itself."
        )
    elif parts.scheme == "http" and not _is_loopback(parts.hostname):
        errors.append(
            f"The `api_url` setting {api_url!r} uses plain http to a host that is not this machine: the token "
            f"would cross the network unencrypted. Use https (Noko's is {DEFAULT_API_URL}); plain http is "
            "allowed only for loopback addresses such as a local emulator."
        )
    start_date = config.get("start_date")
    if start_date is not None:
        try:
            parse_start_date(str(start_date))
        except ValueError:
            errors.append(
                f"The `start_date` setting {start_date!r} is not a date. Use a date such as 2024-01-31 or a "
                "date-time such as 2024-01-31T08:00:00Z; the first entries sync reads entries changed since then."
            )
    for name, spec in properties.items():
        value = config.get(name)
        if value is None or "maximum" not in spec:
            continue
        # The bounds are the config schema's own, so the message and the schema cannot disagree.
        whole = "integer" in spec["type"]
        low, high, above = (
            spec.get("minimum", spec.get("exclusiveMinimum")),
            spec["maximum"],
            "exclusiveMinimum" in spec,
        )
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if (
            not number
            or (whole and not isinstance(value, int))
            or not (low < value if above else low <= value)
            or value > high
        ):
            kind = "a whole number from" if whole else ("a number above" if above else "a number from")
            errors.append(
                f"The `{name}` setting must be {kind} {low} {'and at most' if above else 'to'} {high}; got "
                f"{value!r}. Leave it unset for the default."
            )
    user_agent = config.get("user_agent")
    if user_agent is not None and (not isinstance(user_agent, str) or not user_agent.strip()):
        errors.append("The `user_agent` setting must be a non-empty string: Noko rejects requests without one.")
    return errors


class SingerWriter(MsgSpecWriter):
    """msgspec's fast encoding, written in 64 KiB chunks instead of one write and flush per record.

    MsgSpecWriter flushes after every record, and under PYTHONUNBUFFERED=1 (set
    on this machine, and common in containers) every write is a system call.
    A STATE, SCHEMA or any other message sends everything before it at once, so
    a target never sees a bookmark before its records; records after the last
    STATE of a failed run are not sent, and they are exactly the ones the next
    run reads again.
    """

    CHUNK = 1 << 16

    def __init__(self) -> None:
        super().__init__()
        self._pending = bytearray()

    def write_message(self, message: Message) -> None:
        self._pending += self.format_message(message)
        if len(self._pending) >= self.CHUNK or not isinstance(message, RecordMessage):
            sys.stdout.buffer.write(self._pending)
            self._pending.clear()
            if not isinstance(message, RecordMessage):
                sys.stdout.flush()


class TapNoko(Tap):
    """Singer tap for Noko time tracking: entries, projects, tags and users."""

    name = "tap-noko"
    message_writer_class = SingerWriter

    config_jsonschema = th.PropertiesList(
        th.Property(
            "token",
            th.StringType,
            required=True,
            secret=True,
            title="Personal access token",
            description="Noko personal access token, sent only in the X-NokoToken header.",
        ),
        th.Property(
            "api_url",
            th.StringType,
            default=DEFAULT_API_URL,
            title="API URL",
            description="Base URL of the Noko v2 API; point it at the local emulator or a proxy. https only, "
            "except for loopback hosts.",
        ),
        th.Property(
            "start_date",
            th.StringType,
            title="Start date",
            description="Earliest `updated_at` the first entries sync reads: a date (2024-01-31) or date-time "
            "(2024-01-31T08:00:00Z). Unset: all entries.",
        ),
        th.Property(
            "user_agent",
            th.StringType,
            default=f"tap-noko/{__version__}",
            title="User agent",
            description="User-Agent header sent with every request (Noko requires one).",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=MAX_PAGE_SIZE),
            default=MAX_PAGE_SIZE,
            title="Page size",
            description="Records asked for per request (`per_page`), 1 to 1000.",
        ),
        th.Property(
            "max_requests_per_second",
            th.NumberType(exclusive_minimum=0, maximum=1000),
            default=2,
            title="Max requests per second",
            description="Requests of one run are spaced to at most this rate, across all streams. Noko allows 2 "
            "per second; raise it only for a proxy or emulator without that limit.",
        ),
        th.Property(
            "request_timeout",
            th.NumberType(minimum=1, maximum=600),
            default=60,
            title="Request timeout",
            description="Seconds to wait for a response before retrying the request.",
        ),
    ).to_dict()

    @functools.cached_property
    def run(self) -> Run:
        """Shared by this tap's streams: made on first use, after the config is read."""
        return Run(float(self.config.get("max_requests_per_second", 2)))

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        # The SDK exits 0 here, which tells an orchestrator that an interrupted sync succeeded.
        self.logger.warning(
            "Stopped by signal %d before the sync finished; the last STATE written is where the next run resumes.",
            signum,
        )
        sys.exit(128 + signum)

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        errors = config_errors(dict(self.config), self.config_jsonschema["properties"])
        if not errors:
            return super()._validate_config(raise_errors=raise_errors)
        if raise_errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        return errors  # discovery and --about need no valid config

    def discover_streams(self) -> list[NokoStream]:
        return [stream(self, self.run) for stream in (EntriesStream, ProjectsStream, TagsStream, UsersStream)]
