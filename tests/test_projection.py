"""Records are cut to their schema and selection: the replacement for the SDK's per-record walks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from tap_noko.emulator import Emulator
from tap_noko.projection import Projector
from tap_noko.schema import load_schema
from tests.conftest import by_id, run_tap, tap_config

Make = Callable[..., Emulator]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "user": {"type": ["object", "null"], "properties": {"id": {"type": "integer"}, "email": {"type": "string"}}},
        "tags": {
            "type": ["array", "null"],
            "items": {
                "type": ["object", "null"],
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
            },
        },
        "minutes": {"type": ["integer", "null"]},
    },
}


def everything(_: tuple[str, ...]) -> bool:
    return True


def test_a_record_with_nothing_to_drop_passes_unchanged() -> None:
    record = {"id": 1, "user": {"id": 2, "email": "a@b"}, "tags": [{"id": 3, "name": "x"}], "minutes": None}
    project = Projector(SCHEMA, everything)
    assert project(record) is record
    assert project({"id": 1, "user": None, "tags": None}) == {"id": 1, "user": None, "tags": None}
    assert not project.undeclared


def test_undeclared_fields_are_dropped_at_every_depth_and_counted() -> None:
    project = Projector(SCHEMA, everything)
    record = {
        "id": 1,
        "new": True,
        "user": {"id": 2, "email": "a@b", "avatar": "u"},
        "tags": [{"id": 3, "name": "x", "colour": "red"}, {"id": 4, "name": "y"}],
        "minutes": 5,
    }
    assert project(record) == {
        "id": 1,
        "user": {"id": 2, "email": "a@b"},
        "tags": [{"id": 3, "name": "x"}, {"id": 4, "name": "y"}],
        "minutes": 5,
    }
    assert record["user"]["avatar"] == "u"  # the input is not changed
    project({"id": 2, "new": 1, "user": {"id": 1, "avatar": "v"}})
    assert project.undeclared == {"new": 2, "user.avatar": 2, "tags[].colour": 1}


def test_deselected_fields_are_dropped() -> None:
    deselected = {
        ("properties", "minutes"),
        ("properties", "user", "properties", "email"),
        ("properties", "tags", "properties", "name"),
    }
    project = Projector(SCHEMA, lambda crumb: crumb not in deselected)
    record = {"id": 1, "user": {"id": 2, "email": "a@b"}, "tags": [{"id": 3, "name": "x"}], "minutes": 5}
    assert project(record) == {"id": 1, "user": {"id": 2}, "tags": [{"id": 3}]}
    assert not project.undeclared


def test_types_are_left_as_noko_sent_them() -> None:
    project = Projector(load_schema("entries"), everything)
    record = {
        "id": 7,
        "minutes": 30,
        "billable": False,
        "date": "2024-02-29",
        "updated_at": "2024-03-01T10:00:00Z",
        "invoice": {"id": 1, "total_amount": 12.5, "reference": "A"},
    }
    assert project(record) == record
    assert [type(v) for v in project(record).values()] == [type(v) for v in record.values()]


def test_fields_noko_adds_are_dropped_and_reported_once(make_emulator: Make, caplog: pytest.LogCaptureFixture) -> None:
    emu = make_emulator(entries=400)
    expected = by_id(emu.store.entries())
    emu.store.drift("kudos", 3)
    emu.store.drift("pronouns", "they", nested="user")
    with caplog.at_level(logging.WARNING):
        run = run_tap(tap_config(emu, page_size=150))
    assert by_id(run.records("entries")) == expected
    warnings = [r.getMessage() for r in caplog.records if "does not declare" in r.getMessage()]
    assert warnings == [
        "Noko sent fields the entries schema does not declare; they were dropped: kudos (400×), "
        "user.pronouns (400×). A newer tap-noko may know them."
    ]
