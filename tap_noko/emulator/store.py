"""The emulator's data: lists, filters, ordering, mutations and the clock.

Entries are held with two indexes so that a large account stays fast: the
listing order Noko uses (``date`` newest first, then ``id``) and an
``updated_at`` index for window queries. Each entry's JSON is encoded once
and cached, because the tap benchmark must never end up measuring us.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tap_noko.emulator.data import Record, generate, ts

LISTS = ("entries", "projects", "tags", "users", "project_groups", "teams", "expenses", "invoices", "timers")
SINGLES = ("account", "current_user")


class BadFilterError(ValueError):
    """A malformed filter value: the server answers 400 with this message."""


class Clock:
    """Wall-clock time plus an offset tests can advance instead of sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(int(time.time() + self.offset), tz=dt.timezone.utc)

    def timestamp(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def _parse_timestamp(name: str, value: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadFilterError(
            f"{name} must be an ISO 8601 timestamp such as 2024-01-31T12:00:00Z, got {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return ts(moment)


def _parse_date(name: str, value: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise BadFilterError(f"{name} must be a date in the form YYYY-MM-DD, got {value!r}") from None


def _parse_ids(name: str, value: str) -> set[int]:
    try:
        return {int(part) for part in value.split(",") if part.strip()}
    except ValueError:
        raise BadFilterError(f"{name} must be a comma-separated list of integer ids, got {value!r}") from None


def _parse_bool(name: str, value: str) -> bool:
    if value in ("true", "false"):
        return value == "true"
    raise BadFilterError(f"{name} must be true or false, got {value!r}")


def _nested_id(key: str) -> Callable[[Record], set[int]]:
    def get(record: Record) -> set[int]:
        value = record.get(key)
        if isinstance(value, list):
            return {item["id"] for item in value}
        return {value["id"]} if value else set()

    return get


def build_predicate(endpoint: str, params: dict[str, str]) -> Callable[[Record], bool] | None:
    """Turn a list's documented filter parameters into one record predicate."""
    checks: list[Callable[[Record], bool]] = []
    for name, value in params.items():
        spec = FILTERS.get(endpoint, {}).get(name)
        if spec is not None:
            checks.append(spec(name, value, params))
    if not checks:
        return None
    return lambda record: all(check(record) for check in checks)


def _ids_filter(key: str) -> Callable[[str, str, dict[str, str]], Callable[[Record], bool]]:
    getter = _nested_id(key)

    def make(name: str, value: str, params: dict[str, str]) -> Callable[[Record], bool]:
        wanted = _parse_ids(name, value)
        if key == "tags" and params.get("tag_filter_type", "and") == "and":
            return lambda r: wanted <= getter(r)
        return lambda r: bool(wanted & getter(r))

    return make


def _bool_filter(key: str) -> Callable[[str, str, dict[str, str]], Callable[[Record], bool]]:
    def make(name: str, value: str, _: dict[str, str]) -> Callable[[Record], bool]:
        wanted = _parse_bool(name, value)
        return lambda r: bool(r[key]) == wanted

    return make


def _present_filter(key: str) -> Callable[[str, str, dict[str, str]], Callable[[Record], bool]]:
    def make(name: str, value: str, _: dict[str, str]) -> Callable[[Record], bool]:
        wanted = _parse_bool(name, value)
        return lambda r: (r[key] is not None) == wanted

    return make


def _text_filter(key: str) -> Callable[[str, str, dict[str, str]], Callable[[Record], bool]]:
    def make(_name: str, value: str, _: dict[str, str]) -> Callable[[Record], bool]:
        needle = value.casefold()
        return lambda r: needle in (r[key] or "").casefold()

    return make


def _enum_filter(key: str, allowed: Iterable[str]) -> Callable[[str, str, dict[str, str]], Callable[[Record], bool]]:
    options = set(allowed)

    def make(name: str, value: str, _: dict[str, str]) -> Callable[[Record], bool]:
        wanted = set(value.split(","))
        if not wanted <= options:
            raise BadFilterError(f"{name} must be one or more of {', '.join(sorted(options))}, got {value!r}")
        return lambda r: r[key] in wanted

    return make


def _range_filter(
    key: str, parse: Callable[[str, str], str], upper: bool
) -> Callable[[str, str, dict[str, str]], Callable[[Record], bool]]:
    def make(name: str, value: str, _: dict[str, str]) -> Callable[[Record], bool]:
        bound = parse(name, value)
        if upper:
            return lambda r: r[key] is not None and r[key] <= bound
        return lambda r: r[key] is not None and r[key] >= bound

    return make


FILTERS: dict[str, dict[str, Callable[[str, str, dict[str, str]], Callable[[Record], bool]]]] = {
    "entries": {
        "user_ids": _ids_filter("user"),
        "project_ids": _ids_filter("project"),
        "tag_ids": _ids_filter("tags"),
        "billable": _bool_filter("billable"),
        "invoiced": _present_filter("invoice"),
        "from": _range_filter("date", _parse_date, upper=False),
        "to": _range_filter("date", _parse_date, upper=True),
        "updated_from": _range_filter("updated_at", _parse_timestamp, upper=False),
        "updated_to": _range_filter("updated_at", _parse_timestamp, upper=True),
        "description": _text_filter("description"),
    },
    "projects": {
        "enabled": _bool_filter("enabled"),
        "billable": _bool_filter("billable"),
        "name": _text_filter("name"),
    },
    "tags": {"billable": _bool_filter("billable"), "name": _text_filter("name")},
    "users": {
        "state": _enum_filter("state", ["active", "disabled", "pending", "suspended"]),
        "role": _enum_filter("role", ["supervisor", "leader", "coworker", "contractor"]),
        "name": _text_filter("first_name"),
        "email": _text_filter("email"),
    },
    "invoices": {
        "updated_from": _range_filter("updated_at", _parse_timestamp, upper=False),
        "updated_to": _range_filter("updated_at", _parse_timestamp, upper=True),
    },
}


def _encode(record: Record | list[Record]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Page:
    """One page of a list: the encoded body and what the Link header needs."""

    body: bytes
    ids: list[int]
    page: int
    last_page: int


class Store:
    """Thread-safe account data with the filters and mutations tests need."""

    def __init__(
        self, *, seed: int = 1, entries: int = 2000, users: int = 12, projects: int = 25, tags: int = 40
    ) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.account, self._generator = generate(seed, entries=entries, users=users, projects=projects, tags=tags)
        self._entries: dict[int, Record] = {e["id"]: e for e in self.account.entries}
        self._encoded: dict[int, bytes] = {i: _encode(e) for i, e in self._entries.items()}
        self._reindex()

    # -- reading ----------------------------------------------------------
    def entries(self) -> list[Record]:
        """Every entry the account holds now, in listing order (deep copies)."""
        with self.lock:
            return [json.loads(self._encoded_entry(i)) for i in self._by_date]

    def records(self, endpoint: str) -> list[Record]:
        """What a complete, unfiltered walk of a list returns (deep copies)."""
        if endpoint == "entries":
            return self.entries()
        with self.lock:
            copied: list[Record] = json.loads(json.dumps(getattr(self.account, endpoint)))
            return copied

    def single(self, endpoint: str) -> bytes:
        with self.lock:
            return _encode(getattr(self.account, endpoint))

    def page(self, endpoint: str, params: dict[str, str], page: int, per_page: int) -> Page:
        """Filter, order and slice a list. Raises BadFilterError on malformed values."""
        with self.lock:
            if endpoint == "entries":
                ids = self._entry_ids(params)
                start = (page - 1) * per_page
                chunk = ids[start : start + per_page]
                body = b"[" + b",".join(self._encoded_entry(i) for i in chunk) + b"]"
                return Page(body, chunk, page, max(1, -(-len(ids) // per_page)))
            predicate = build_predicate(endpoint, params)
            records = [r for r in getattr(self.account, endpoint) if predicate is None or predicate(r)]
            start = (page - 1) * per_page
            chunk_records = records[start : start + per_page]
            return Page(
                _encode(chunk_records), [r["id"] for r in chunk_records], page, max(1, -(-len(records) // per_page))
            )

    def _entry_ids(self, params: dict[str, str]) -> list[int]:
        lower = params.get("updated_from")
        upper = params.get("updated_to")
        if lower is None and upper is None:
            candidates: Iterable[int] = self._by_date
            ordered = True
        else:
            lo = 0 if lower is None else bisect.bisect_left(self._updated_keys, _parse_timestamp("updated_from", lower))
            hi = (
                len(self._updated_keys)
                if upper is None
                else bisect.bisect_right(self._updated_keys, _parse_timestamp("updated_to", upper))
            )
            candidates = self._updated_ids[lo:hi]
            ordered = False
        rest = {k: v for k, v in params.items() if k not in ("updated_from", "updated_to")}
        predicate = build_predicate("entries", rest)
        ids = [i for i in candidates if predicate is None or predicate(self._entries[i])]
        if not ordered:
            ids.sort(key=self._rank.__getitem__)
        return ids

    def _encoded_entry(self, entry_id: int) -> bytes:
        cached = self._encoded.get(entry_id)
        if cached is None:
            cached = self._encoded[entry_id] = _encode(self._entries[entry_id])
        return cached

    def _reindex(self) -> None:
        entries = list(self._entries.values())
        entries.sort(key=lambda e: (-dt.date.fromisoformat(e["date"]).toordinal(), e["id"]))
        self._by_date = [e["id"] for e in entries]
        self._rank = {entry_id: rank for rank, entry_id in enumerate(self._by_date)}
        by_updated = sorted(entries, key=lambda e: (e["updated_at"], e["id"]))
        self._updated_keys = [e["updated_at"] for e in by_updated]
        self._updated_ids = [e["id"] for e in by_updated]
        self.account.entries = entries
        self._refresh_counts()

    def _refresh_counts(self) -> None:
        """Counts and minutes on users, projects, tags and invoices follow the entries."""
        acc = self.account
        for collection in (acc.users, acc.projects, acc.tags, acc.invoices):
            for record in collection:
                record["entries"] = 0
        for project in acc.projects:
            for key in ("minutes", "billable_minutes", "unbillable_minutes", "invoiced_minutes"):
                project[key] = 0
        users = {u["id"]: u for u in acc.users}
        projects = {p["id"]: p for p in acc.projects}
        tags = {t["id"]: t for t in acc.tags}
        invoices = {i["id"]: i for i in acc.invoices}
        for e in acc.entries:
            users[e["user"]["id"]]["entries"] += 1
            for tag in e["tags"]:
                tags[tag["id"]]["entries"] += 1
            if e["invoice"]:
                invoices[e["invoice"]["id"]]["entries"] += 1
            if e["project"]:
                p = projects[e["project"]["id"]]
                p["entries"] += 1
                p["minutes"] += e["minutes"]
                p["billable_minutes" if e["billable"] else "unbillable_minutes"] += e["minutes"]
                if e["invoice"]:
                    p["invoiced_minutes"] += e["minutes"]
        for p in acc.projects:
            budget = p["budgeted_minutes"]
            p["remaining_minutes"] = None if budget is None else budget - p["minutes"]
        for collection in (acc.users, acc.projects, acc.invoices):
            for record in collection:
                record["expenses"] = 0
        for x in acc.expenses:
            users[x["user"]["id"]]["expenses"] += 1
            projects[x["project"]["id"]]["expenses"] += 1
            if x["invoice"]:
                invoices[x["invoice"]["id"]]["expenses"] += 1
        owner = acc.current_user
        if owner:
            owner["entries"] = users[owner["id"]]["entries"]
            owner["expenses"] = users[owner["id"]]["expenses"]

    # -- mutations (tests and the control API) -----------------------------
    def sample_ids(self, among: Iterable[int], count: int) -> list[int]:
        """A seeded choice of ``count`` live entry ids from ``among``."""
        with self.lock:
            live = sorted(set(among) & self._entries.keys())
            return self._generator.rng.sample(live, k=min(count, len(live)))

    def edit_entries(self, count: int = 0, ids: Iterable[int] | None = None) -> list[int]:
        """Edit entries as a user would; their ``updated_at`` becomes now."""
        with self.lock:
            chosen = list(ids) if ids is not None else self.sample_ids(self._entries, count)
            stamp = ts(self.clock.now())
            for entry_id in chosen:
                entry = self._entries[entry_id]
                entry["minutes"] += 15
                entry["description"] = f"{entry['description'] or ''} (edited ✎)".strip()
                entry["updated_at"] = stamp
                self._encoded.pop(entry_id, None)
            self._reindex()
            return chosen

    def drift(self, name: str, value: Any, *, nested: str | None = None) -> None:
        """Noko starts sending a field nobody declared: on every entry, or inside its ``nested`` object."""
        with self.lock:
            for entry_id, entry in self._entries.items():
                target = entry[nested] if nested else entry
                if isinstance(target, dict):
                    target[name] = value
                self._encoded.pop(entry_id, None)

    def delete_entries(self, count: int = 0, ids: Iterable[int] | None = None) -> list[int]:
        with self.lock:
            chosen = list(ids) if ids is not None else self.sample_ids(self._entries, count)
            for entry_id in chosen:
                del self._entries[entry_id]
                self._encoded.pop(entry_id, None)
            self._reindex()
            return chosen

    def add_entries(self, count: int) -> list[int]:
        with self.lock:
            now = self.clock.now()
            added = [self._generator.new_entry(now.date(), now=now) for _ in range(count)]
            for entry in added:
                self._entries[entry["id"]] = entry
            self._reindex()
            return [e["id"] for e in added]
