"""The emulator's read API over real HTTP: auth, shapes, paging, ordering, filters."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tap_noko.emulator import Emulator, Store

Get = Callable[..., requests.Response]
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

SIMPLE_USER = {"id", "email", "first_name", "last_name", "profile_image_url", "url"}
SIMPLE_PROJECT = {"id", "name", "billing_increment", "enabled", "billable", "color", "url"}
SIMPLE_TAG = {"id", "name", "billable", "formatted_name", "url"}
SIMPLE_INVOICE = {"id", "reference", "invoice_date", "state", "total_amount", "url"}
# The v2 field lists of shared/noko-api.md, written out independently of the generator.
FIELDS = {
    "entries": {
        "id",
        "date",
        "user",
        "billable",
        "minutes",
        "description",
        "project",
        "tags",
        "source_url",
        "invoiced_at",
        "invoice",
        "import",
        "approved_at",
        "approved_by",
        "url",
        "invoiced_outside_of_noko_url",
        "approved_url",
        "unapproved_url",
        "created_at",
        "updated_at",
    },
    "projects": SIMPLE_PROJECT
    | {
        "group",
        "minutes",
        "billable_minutes",
        "unbillable_minutes",
        "invoiced_minutes",
        "remaining_minutes",
        "budgeted_minutes",
        "import",
        "invoices",
        "participants",
        "entries",
        "entries_url",
        "expenses",
        "expenses_url",
        "created_at",
        "updated_at",
        "merge_url",
        "archive_url",
        "unarchive_url",
    },
    "tags": SIMPLE_TAG | {"import", "entries", "entries_url", "merge_url", "created_at", "updated_at"},
    "users": SIMPLE_USER
    | {
        "state",
        "role",
        "teams",
        "entries",
        "entries_url",
        "expenses",
        "expenses_url",
        "give_access_to_project_url",
        "revoke_access_to_project_url",
        "revoke_access_to_all_projects_url",
        "activate_url",
        "deactivate_url",
        "created_at",
        "updated_at",
    },
    "project_groups": {
        "id",
        "name",
        "projects",
        "url",
        "entries_url",
        "invoices_url",
        "projects_url",
        "add_projects_url",
        "remove_projects_url",
        "remove_all_projects_url",
        "created_at",
        "updated_at",
    },
    "teams": {
        "id",
        "name",
        "users",
        "url",
        "entries_url",
        "users_url",
        "add_users_url",
        "remove_users_url",
        "remove_all_users_url",
        "created_at",
        "updated_at",
    },
    "expenses": {
        "id",
        "price",
        "description",
        "taxable",
        "date",
        "project",
        "invoice",
        "user",
        "url",
        "created_at",
        "updated_at",
    },
    "timers": {
        "id",
        "state",
        "seconds",
        "formatted_time",
        "date",
        "description",
        "user",
        "project",
        "url",
        "start_url",
        "pause_url",
        "add_or_subtract_time_url",
        "log_url",
    },
}


def walk(get: Get, emu: Emulator, path: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Follow Link rel=next as given; return every record and the request count."""
    response = get(emu, path, **params)
    records, requests_made = [], 1
    while True:
        assert response.status_code == 200, response.text
        records.extend(response.json())
        if "next" not in response.links:
            return records, requests_made
        response = get(emu, response.links["next"]["url"])
        requests_made += 1


def test_auth_user_agent_and_status_codes(shared_emulator: Emulator, api: Get) -> None:
    ok = api(shared_emulator, "tags")
    assert ok.status_code == 200
    bad = api(shared_emulator, "tags", token="wrong")
    assert bad.status_code == 401
    assert "token" in bad.json()["message"]
    assert api(shared_emulator, "tags", token="").status_code == 401
    no_agent = requests.get(
        f"{shared_emulator.base_url}/tags", headers={"X-NokoToken": shared_emulator.token, "User-Agent": ""}, timeout=10
    )
    assert no_agent.status_code == 400
    assert "User-Agent" in no_agent.json()["message"]
    missing = api(shared_emulator, "nothing_here")
    assert missing.status_code == 404
    assert missing.json()["message"]
    outside = api(shared_emulator, f"{shared_emulator.base_url.removesuffix('/v2')}/v1/entries")
    assert outside.status_code == 404
    for response in (ok, bad, no_agent, missing):
        assert response.headers["Date"].endswith(" GMT")


def test_token_in_query_is_accepted_and_counted(make_emulator: Callable[..., Emulator], api: Get) -> None:
    emu = make_emulator(entries=10)
    assert api(emu, "tags").status_code == 200
    assert emu.stats.token_in_query is False
    assert api(emu, "tags", token="", noko_token=emu.token).status_code == 200
    assert emu.stats.token_in_query is True


def test_malformed_filters_and_duplicate_parameters_get_400(shared_emulator: Emulator, api: Get) -> None:
    for params in (
        {"updated_from": "yesterday"},
        {"from": "2024-13-01"},
        {"user_ids": "1,x"},
        {"billable": "yes"},
        {"per_page": "0"},
        {"page": "-1"},
        {"state": "retired"},
    ):
        path = "users" if "state" in params else "entries"
        response = api(shared_emulator, path, **params)
        assert response.status_code == 400, params
        assert next(iter(params)) in response.json()["message"]
    twice = api(shared_emulator, f"{shared_emulator.base_url}/entries?per_page=5&per_page=5")
    assert twice.status_code == 400
    assert "per_page" in twice.json()["message"]


@pytest.mark.parametrize("path", sorted(FIELDS))
def test_every_documented_field_is_present(shared_emulator: Emulator, api: Get, path: str) -> None:
    records, _ = walk(api, shared_emulator, path, per_page=1000)
    assert records
    for record in records:
        assert set(record) == FIELDS[path], path


def test_single_objects(shared_emulator: Emulator, api: Get) -> None:
    account = api(shared_emulator, "account").json()
    assert set(account) == {"id", "name", "invoicing_enabled", "owner", "url", "created_at", "updated_at"}
    assert set(account["owner"]) == SIMPLE_USER
    me = api(shared_emulator, "current_user").json()
    assert set(me) == SIMPLE_USER | {
        "state",
        "role",
        "entries",
        "entries_url",
        "expenses",
        "expenses_url",
        "time_format",
        "week_start",
        "utc_offset",
        "send_personal_weekly_report_email",
        "send_team_weekly_report_email",
        "created_at",
        "updated_at",
    }


def test_data_is_deterministic_realistic_and_messy() -> None:
    one, same, other = Store(seed=3, entries=400), Store(seed=3, entries=400), Store(seed=4, entries=400)
    assert one.entries() == same.entries()
    assert one.entries() != other.entries()
    entries = one.entries()
    assert len(entries) == 400
    assert len({e["id"] for e in entries}) == 400
    assert all(0 < e["id"] <= 2**31 - 1 for e in entries)
    for e in entries:
        assert TIMESTAMP.match(e["created_at"]) and TIMESTAMP.match(e["updated_at"])
        assert e["updated_at"] >= e["created_at"]
        assert len(e["tags"]) <= 3
        assert set(e["user"]) == SIMPLE_USER
        assert e["project"] is None or set(e["project"]) == SIMPLE_PROJECT
        assert all(set(t) == SIMPLE_TAG for t in e["tags"])
        assert e["invoice"] is None or set(e["invoice"]) == SIMPLE_INVOICE
    assert any(e["project"] is None for e in entries)
    assert {len(e["tags"]) for e in entries} == {0, 1, 2, 3}
    assert any(e["invoice"] for e in entries) and any(e["approved_at"] for e in entries)
    assert any(e["description"] is None for e in entries)
    assert any("\n" in (e["description"] or "") for e in entries)
    assert any('"' in (e["description"] or "") for e in entries)
    assert any(not (e["description"] or "").isascii() for e in entries)
    dates = sorted(dt.date.fromisoformat(e["date"]) for e in entries)
    assert (dates[-1] - dates[0]).days > 900
    # Invoicing stamps many entries in one second, as Noko does.
    assert max(sum(1 for e in entries if e["updated_at"] == u) for u in {e["updated_at"] for e in entries}) > 5


def test_walking_next_returns_each_entry_once_in_noko_order(shared_emulator: Emulator, api: Get) -> None:
    records, pages = walk(api, shared_emulator, "entries", per_page=100)
    assert pages == 7
    assert records == shared_emulator.store.entries()
    assert len({r["id"] for r in records}) == 700
    keys = [(-dt.date.fromisoformat(r["date"]).toordinal(), r["id"]) for r in records]
    assert keys == sorted(keys)


def test_default_and_capped_page_sizes(shared_emulator: Emulator, api: Get) -> None:
    assert len(api(shared_emulator, "entries").json()) == 30
    assert len(api(shared_emulator, "entries", per_page=5000).json()) == 700
    records, pages = walk(api, shared_emulator, "entries")
    assert (len(records), pages) == (700, 24)


def test_link_header_keeps_the_query_and_has_all_relations(shared_emulator: Emulator, api: Get) -> None:
    first = api(shared_emulator, "entries", per_page=200, billable="true")
    base = shared_emulator.base_url
    assert first.links["next"]["url"] == f"{base}/entries?per_page=200&billable=true&page=2"
    assert first.links["first"]["url"] == f"{base}/entries?per_page=200&billable=true&page=1"
    assert "prev" not in first.links
    last_url = first.links["last"]["url"]
    last = api(shared_emulator, last_url)
    assert "next" not in last.links
    assert last.links["prev"]["url"].startswith(f"{base}/entries?per_page=200&billable=true&page=")
    middle = api(shared_emulator, first.links["next"]["url"])
    assert middle.links["prev"]["url"] == first.links["first"]["url"]


def _brute(records: list[dict[str, Any]], predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    return [r for r in records if predicate(r)]


def test_every_filter_equals_a_brute_force_filter(shared_emulator: Emulator, api: Get) -> None:
    store = shared_emulator.store
    entries = store.entries()
    stamps = sorted(e["updated_at"] for e in entries)
    lo, hi = stamps[100], stamps[400]
    some_user = entries[0]["user"]["id"]
    tagged = next(e for e in entries if len(e["tags"]) >= 2)
    tag_a, tag_b = tagged["tags"][0]["id"], tagged["tags"][1]["id"]
    project = next(e for e in entries if e["project"])["project"]["id"]
    cases: list[tuple[str, dict[str, str], Callable[[dict[str, Any]], bool]]] = [
        ("entries", {"updated_from": lo}, lambda e: e["updated_at"] >= lo),
        ("entries", {"updated_to": hi}, lambda e: e["updated_at"] <= hi),
        ("entries", {"updated_from": lo, "updated_to": hi}, lambda e: lo <= e["updated_at"] <= hi),
        ("entries", {"updated_from": lo.replace("Z", "+00:00")}, lambda e: e["updated_at"] >= lo),
        ("entries", {"from": "2024-03-01", "to": "2024-06-30"}, lambda e: "2024-03-01" <= e["date"] <= "2024-06-30"),
        ("entries", {"user_ids": str(some_user)}, lambda e: e["user"]["id"] == some_user),
        ("entries", {"project_ids": str(project)}, lambda e: bool(e["project"]) and e["project"]["id"] == project),
        ("entries", {"tag_ids": f"{tag_a},{tag_b}"}, lambda e: {tag_a, tag_b} <= {t["id"] for t in e["tags"]}),
        (
            "entries",
            {"tag_ids": f"{tag_a},{tag_b}", "tag_filter_type": "combination of"},
            lambda e: bool({tag_a, tag_b} & {t["id"] for t in e["tags"]}),
        ),
        ("entries", {"billable": "false"}, lambda e: e["billable"] is False),
        ("entries", {"invoiced": "true"}, lambda e: e["invoice"] is not None),
        (
            "entries",
            {"invoiced": "false", "billable": "true", "updated_from": lo},
            lambda e: e["invoice"] is None and e["billable"] and e["updated_at"] >= lo,
        ),
        ("projects", {"enabled": "false"}, lambda p: p["enabled"] is False),
        ("projects", {"billable": "true"}, lambda p: p["billable"] is True),
        ("projects", {"name": "LAUNCH"}, lambda p: "launch" in p["name"].lower()),
        ("users", {"state": "active"}, lambda u: u["state"] == "active"),
        ("users", {"role": "coworker,contractor"}, lambda u: u["role"] in ("coworker", "contractor")),
        (
            "invoices",
            {"updated_from": "2024-01-01T00:00:00Z", "updated_to": "2024-12-31T23:59:59Z"},
            lambda i: "2024-01-01T00:00:00Z" <= i["updated_at"] <= "2024-12-31T23:59:59Z",
        ),
    ]
    for path, params, predicate in cases:
        got, _ = walk(api, shared_emulator, path, per_page=1000, **params)
        expected = _brute(store.records(path), predicate)
        assert expected, (path, params)
        assert len(expected) < len(store.records(path)), (path, params)
        assert sorted(json.dumps(r, sort_keys=True) for r in got) == sorted(
            json.dumps(r, sort_keys=True) for r in expected
        ), (path, params)
