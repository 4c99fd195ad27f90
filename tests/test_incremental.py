"""Incremental entries: bookmarks, start_date, the horizon and request counts, exactly."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from tap_noko.emulator import Emulator
from tap_noko.streams import EntriesStream
from tests.conftest import TAP, TapRun, by_id, only, parse_output, run_tap, tap_config

Make = Callable[..., Emulator]
PAST_HORIZON = EntriesStream.HORIZON_MARGIN_SECONDS + 1


def entries_only(emu: Emulator, state: dict[str, Any] | None = None, **config: Any) -> TapRun:
    emu.reset_stats()
    return run_tap(tap_config(emu, **config), state=state, catalog=only("entries"))


def entries_queries(emu: Emulator) -> list[dict[str, str]]:
    return [dict(parse_qsl(r.query)) for r in emu.stats.requests if r.path == "entries"]


def bookmark(run: TapRun) -> str:
    value: str = run.state["bookmarks"]["entries"]["replication_key_value"]
    return value


def test_changed_entries_come_back_with_one_request(make_emulator: Make) -> None:
    emu = make_emulator(entries=3000)
    first = entries_only(emu)
    assert by_id(first.records("entries")) == by_id(emu.store.entries())
    mark = bookmark(first)
    assert mark == max(e["updated_at"] for e in emu.store.entries())

    edited = emu.store.edit_entries(7)
    added = emu.store.add_entries(3)
    emu.store.clock.advance(PAST_HORIZON)
    second = entries_only(emu, state=first.state)
    now = by_id(emu.store.entries())
    same_second = {i for i, e in now.items() if e["updated_at"] == mark}
    assert set(by_id(second.records("entries"))) == set(edited) | set(added) | same_second
    assert all(r == now[r["id"]] for r in second.records("entries"))
    assert entries_queries(emu) == [{"per_page": "1000", "updated_from": mark}]
    assert bookmark(second) == max(e["updated_at"] for e in now.values())


def test_a_run_after_nothing_changed_sends_nothing_older_than_the_bookmark(make_emulator: Make) -> None:
    emu = make_emulator(entries=1500)
    first = entries_only(emu)
    mark = bookmark(first)
    emu.store.clock.advance(3600)
    again = entries_only(emu, state=first.state)
    at_mark = {e["id"] for e in emu.store.entries() if e["updated_at"] == mark}
    assert set(by_id(again.records("entries"))) == at_mark
    assert all(r["updated_at"] == mark for r in again.records("entries"))
    assert bookmark(again) == mark
    assert len(entries_queries(emu)) == 1


def test_many_changes_are_all_read_in_windows(make_emulator: Make) -> None:
    emu = make_emulator(entries=6000)
    first = entries_only(emu)
    edited = set(emu.store.edit_entries(2600))
    emu.store.clock.advance(PAST_HORIZON)
    second = entries_only(emu, state=first.state, page_size=500)
    got = by_id(second.records("entries"))
    mark = bookmark(first)
    assert set(got) == edited | {e["id"] for e in emu.store.entries() if e["updated_at"] == mark}
    now = by_id(emu.store.entries())
    assert all(record == now[i] for i, record in got.items())
    # Emitted in updated_at order, so every STATE along the way is a safe place to resume.
    stamps = [r["updated_at"] for r in second.records("entries")]
    assert stamps == sorted(stamps)
    assert all(q.get("updated_from", mark) >= mark for q in entries_queries(emu))


def test_start_date_bounds_the_first_sync(make_emulator: Make) -> None:
    emu = make_emulator(entries=2000)
    run = entries_only(emu, start_date="2025-03-01")
    expected = {e["id"] for e in emu.store.entries() if e["updated_at"] >= "2025-03-01T00:00:00Z"}
    assert set(by_id(run.records("entries"))) == expected
    assert entries_queries(emu)[0] == {"per_page": "1000", "updated_from": "2025-03-01T00:00:00Z"}
    with_time = entries_only(emu, start_date="2025-03-01T12:30:00+02:00")
    assert {r["id"] for r in with_time.records("entries")} == {
        e["id"] for e in emu.store.entries() if e["updated_at"] >= "2025-03-01T10:30:00Z"
    }


def test_the_bookmark_wins_over_start_date(make_emulator: Make) -> None:
    emu = make_emulator(entries=800)
    first = entries_only(emu, start_date="2020-01-01")
    again = entries_only(emu, state=first.state, start_date="2020-01-01")
    assert entries_queries(emu)[0]["updated_from"] == bookmark(first)
    assert len(again.records("entries")) == sum(1 for e in emu.store.entries() if e["updated_at"] == bookmark(first))


def test_changes_newer_than_the_horizon_wait_for_the_next_run(make_emulator: Make) -> None:
    emu = make_emulator(entries=500)
    first = entries_only(emu)
    emu.store.clock.advance(600)
    settled = set(emu.store.edit_entries(4))
    emu.store.clock.advance(PAST_HORIZON)
    fresh = set(emu.store.edit_entries(3))  # changed "just now": maybe still being written at Noko
    second = entries_only(emu, state=first.state)
    got = set(by_id(second.records("entries")))
    assert settled <= got
    assert not fresh & got
    emu.store.clock.advance(PAST_HORIZON)
    third = entries_only(emu, state=second.state)
    mark = bookmark(second)
    assert mark == max(e["updated_at"] for e in emu.store.entries() if e["id"] in settled)
    at_mark = {e["id"] for e in emu.store.entries() if e["updated_at"] == mark}
    assert set(by_id(third.records("entries"))) == fresh | at_mark


def latest_versions(*runs: TapRun) -> dict[int, dict[str, Any]]:
    latest: dict[int, dict[str, Any]] = {}
    for run in runs:
        for record in run.records("entries"):
            latest[record["id"]] = record
    return latest


def test_edits_and_deletes_during_a_sync_lose_nothing(make_emulator: Make) -> None:
    emu = make_emulator(entries=5000)
    emu.hook_entries_request(4, edit=60, delete=20)
    emu.hook_entries_request(9, edit=40, delete=15)
    first = entries_only(emu, page_size=200)
    assert [h.done for h in emu.server.hooks] == [True, True]
    emu.store.clock.advance(PAST_HORIZON)
    second = entries_only(emu, state=first.state, page_size=200)
    latest = latest_versions(first, second)
    now = by_id(emu.store.entries())
    assert {i: latest.get(i) for i in now} == now  # nothing lost, nothing stale


def test_a_failure_never_bookmarks_entries_it_did_not_emit(make_emulator: Make, quick_retries: None) -> None:
    emu = make_emulator(entries=5000)
    emu.faults.fail_after = 12
    run = run_tap(tap_config(emu, page_size=200), catalog=only("entries"), expect_error=True)
    assert "kept failing" in str(run.error)
    mark = bookmark(run)
    emitted = {r["id"] for r in run.records("entries")}
    assert emitted
    assert {e["id"] for e in emu.store.entries() if e["updated_at"] < mark} <= emitted
    assert max(r["updated_at"] for r in run.records("entries")) == mark


def test_sigterm_mid_sync_then_resume_loses_nothing_and_rereads_only_unfinished_windows(
    make_emulator: Make, tmp_path: Path
) -> None:
    emu = make_emulator(entries=20000)
    config = tap_config(emu, page_size=200, max_requests_per_second=20)
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(only("entries")))
    proc = subprocess.Popen(
        [TAP, "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    lines, bookmarks = [], 0
    for line in proc.stdout:
        lines.append(line)
        if '"type":"STATE"' in line and '"replication_key_value"' in line:
            bookmarks += 1
            if bookmarks == 4:
                break
    proc.terminate()
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + 15
    first = parse_output("".join(lines) + rest)
    assert 0 < len(first.records("entries")) < 20000
    mark = bookmark(first)

    emu.reset_stats()
    second = entries_only(emu, state=first.state, page_size=200)
    now = by_id(emu.store.entries())
    latest = latest_versions(first, second)
    assert {i: latest.get(i) for i in now} == now
    assert entries_queries(emu)[0]["updated_from"] == mark
    resumed = set(by_id(second.records("entries")))
    assert not resumed & {r["id"] for r in first.records("entries") if r["updated_at"] < mark}
    assert resumed == {i for i, e in now.items() if e["updated_at"] >= mark}
