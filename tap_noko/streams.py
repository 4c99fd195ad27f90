"""The streams: one class each; entries carries the windowed incremental reading."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from tap_noko.client import NokoStream, Page

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

Record = dict[str, Any]


class ProjectsStream(NokoStream):
    name = "projects"
    path = "/projects"


class TagsStream(NokoStream):
    name = "tags"
    path = "/tags"


class UsersStream(NokoStream):
    name = "users"
    path = "/users"


_CHANGE_ORDER = operator.itemgetter("updated_at", "id")


def _ts(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(value: str) -> int:
    return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


class EntriesStream(NokoStream):
    """Entries, incremental on ``updated_at``, read so that concurrent edits cannot lose rows.

    Noko lists entries by date and pages by offset, so an entry edited or
    deleted during a sync shifts later ones into pages already read. Instead of
    paging one big query we read ascending, non-overlapping ``updated_at``
    windows, bounded by a horizon a little before the server's clock so that
    nothing is read half-written. A window that does not fit one page is
    narrowed by filters (entry date, then time), never by offset; only a single
    second holding more than a page of one date is paged by ``Link: next``.
    Each window is emitted sorted by ``updated_at``, so the stream is truly
    sorted and every STATE it writes is a safe place to resume from.
    """

    name = "entries"
    path = "/entries"
    replication_key = "updated_at"
    is_sorted = True

    #: Leaves writes still committing at the server's "now" to the next run.
    HORIZON_MARGIN_SECONDS = 5
    #: Records a window should hold, in pages. Windows are read a page at a time by date
    #: (see _read_window), so larger ones waste less on the last, part-full page; smaller
    #: ones re-read less after an interrupted run. Measured in benchmarks/: see BENCHMARKS.md.
    TARGET_PAGES = 5.5

    def read(self, context: Context | None) -> Iterator[Record]:
        page_size = int(self.config["page_size"])
        start = self.get_starting_timestamp(context)
        lower = int(start.timestamp()) if start else 0
        known = self.run.server_time
        horizon = int(known.timestamp()) - self.HORIZON_MARGIN_SECONDS if known else None
        probe_params = {"updated_from": _ts(lower)} if start else {}
        if horizon is not None:
            probe_params["updated_to"] = _ts(horizon)
        probe = self.request_page(context, params=probe_params)
        newest = max((_seconds(r["updated_at"]) for r in probe.records), default=lower)
        if horizon is None:
            # No Date header at all (a proxy dropped it): the probe's own changes bound the run.
            clock = self.run.server_time
            horizon = int(clock.timestamp()) - self.HORIZON_MARGIN_SECONDS if clock else newest
        if probe.next_url is None:
            # Everything changed since the bookmark fits one page: the common hourly run.
            last = _ts(horizon)
            records = self._sorted([r for r in probe.records if r["updated_at"] <= last])
            yield from records
            self._bookmark(records)
            return
        # Too many for one page. Noko's first page holds the newest-dated entries and its last page
        # the oldest: their changes bracket nearly all others, so below and above them one window
        # each suffices, and the first page's dates tell how densely entries change in between.
        density = self._probe_density(probe)
        last_url = probe.last_url
        del probe  # not held for the whole sync
        oldest = self._oldest_change(context, last_url)
        yield from self._windows(context, lower, horizon, self.TARGET_PAGES * page_size, density, newest, oldest)

    def _windows(
        self,
        context: Context | None,
        lower: int,
        horizon: int,
        target: float,
        density: float,
        newest: int,
        oldest: int | None,
    ) -> Iterator[Record]:
        """Read [lower, horizon] in ascending windows of about ``target`` records each."""
        below_oldest = oldest is not None and lower < oldest <= horizon
        length = oldest - lower if oldest is not None and below_oldest else max(1, int(target / density))
        while lower <= horizon:
            upper = min(horizon, lower + length - 1)
            if lower > newest:
                upper = horizon
            elif not below_oldest and newest - upper < length // 2:
                upper = newest
            records = self._sorted(self._read_window(context, lower, upper))
            yield from records
            self._bookmark(records)
            count = len(records)
            del records  # not held while the next window is read: memory stays one window deep
            if below_oldest:
                below_oldest = False  # that window says nothing about density: keep the probe's
            else:
                observed = max(count, 1) / (upper - lower + 1)
                density = (2 * density + observed) / 3
            lower = upper + 1
            length = max(1, int(target / density))

    def _read_window(self, context: Context | None, lower: int, upper: int, to_date: str | None = None) -> list[Record]:
        """Every entry changed in [lower, upper] (and dated up to ``to_date``).

        When one page cannot hold them, the rest is narrowed by filters, never by
        offset: each query's result is fixed by what it asks, so entries edited or
        deleted meanwhile cannot shift others out of it.
        """
        found: dict[int, Record] = {}

        def keep(records: Iterable[Record]) -> list[Record]:
            found.update((r["id"], r) for r in records)
            return list(found.values())

        while True:
            params = {"updated_from": _ts(lower), "updated_to": _ts(upper)}
            if to_date is not None:
                params["to"] = to_date
            page = self.request_page(context, params=params)
            if page.next_url is None:
                return keep(page.records)
            last_date = min(r.get("date") or "" for r in page.records)
            newer = [r for r in page.records if last_date and r["date"] > last_date]
            if len(newer) * 2 >= len(page.records):
                # Noko sorts by date, newest first: every entry dated after the page's last date is in
                # it. Keep those; ask again for the older ones (the last date's are read again).
                keep(newer)
                to_date = last_date
                continue
            if upper > lower:
                middle = (lower + upper) // 2
                keep(self._read_window(context, lower, middle, to_date))
                return keep(self._read_window(context, middle + 1, upper, to_date))
            # One second and one date hold more than a page: only Link paging can read them.
            keep(page.records)
            for more in self.follow(context, page):
                keep(more.records)
            return list(found.values())

    @staticmethod
    def _probe_density(probe: Page) -> float:
        """Changes per second: entries change mostly around their own date, so the probe's dates tell."""
        dates = [r["date"] for r in probe.records if r.get("date")]
        if not dates:
            return 1 / 86400
        days = (dt.date.fromisoformat(max(dates)) - dt.date.fromisoformat(min(dates))).days + 1
        return len(probe.records) / (days * 86400)

    def _oldest_change(self, context: Context | None, last_url: str | None) -> int | None:
        """The earliest change among the oldest-dated entries (Noko's last page)."""
        if last_url is None:
            return None
        last = self.request_page(context, url=last_url)
        stamps = [r["updated_at"] for r in last.records if r.get("updated_at")]
        return _seconds(min(stamps)) if stamps else None

    def _increment_stream_state(self, latest_record: Record, *, context: Context | None = None) -> None:
        """Bookmarks move once per window, in _bookmark: per record it is work for nothing."""

    def _bookmark(self, window: list[Record]) -> None:
        """The SDK has written every record of the window: move the bookmark and make it durable."""
        if window:
            super()._increment_stream_state(window[-1])
            self._write_state_message()

    @staticmethod
    def _sorted(records: list[Record]) -> list[Record]:
        return sorted(records, key=_CHANGE_ORDER)
