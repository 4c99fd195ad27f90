"""Fixtures: real emulators on loopback ports, stopped after each test."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tap_noko.client import NokoStream
from tap_noko.emulator import Emulator
from tap_noko.tap import TapNoko

HEADERS_UA = "tap-noko-tests/1.0"


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    """Start emulators with any options; each one is stopped at teardown."""
    started: list[Emulator] = []

    def make(**options: Any) -> Emulator:
        options.setdefault("rate_limit", False)
        emu = Emulator(**options).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the retry budget so that giving up takes seconds instead of minutes."""
    monkeypatch.setattr(NokoStream, "RETRY_BUDGET_SECONDS", 4.0)
    monkeypatch.setattr(NokoStream, "MAX_BACKOFF_SECONDS", 1.0)


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[Emulator]:
    """A read-only account for tests that never mutate or inject faults."""
    with Emulator(entries=700, rate_limit=False, seed=7) as emu:
        yield emu


@pytest.fixture
def api() -> Callable[..., requests.Response]:
    """GET an emulator path the way a well-behaved client does."""
    session = requests.Session()

    def get(
        emu: Emulator, path: str, *, token: str | None = None, headers: dict[str, str] | None = None, **params: Any
    ) -> requests.Response:
        sent = {"X-NokoToken": emu.token if token is None else token, "User-Agent": HEADERS_UA}
        sent.update(headers or {})
        url = path if path.startswith("http") else f"{emu.base_url}/{path}"
        return session.get(url, headers=sent, params=params or None, timeout=30)

    return get


@dataclass
class TapRun:
    """What one tap run wrote to stdout, parsed."""

    messages: list[dict[str, Any]]
    error: Exception | None = None

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream]

    @property
    def states(self) -> list[dict[str, Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def state(self) -> dict[str, Any]:
        return self.states[-1]

    def schema(self, stream: str) -> dict[str, Any]:
        schema: dict[str, Any] = next(
            m["schema"] for m in self.messages if m["type"] == "SCHEMA" and m["stream"] == stream
        )
        return schema


def tap_config(emu: Emulator, **overrides: Any) -> dict[str, Any]:
    """A config for the tap against ``emu``; the throttle is lifted unless the test is about it."""
    config: dict[str, Any] = {"token": emu.token, "api_url": emu.base_url, "max_requests_per_second": 1000}
    config.update(overrides)
    return config


def run_tap(
    config: dict[str, Any],
    *,
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
    expect_error: bool = False,
) -> TapRun:
    """Run a sync in this process, as `tap-noko --config … --state … --catalog …` would.

    With ``expect_error`` a failing sync returns what it wrote before failing, and the error.
    """
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    error: Exception | None = None
    with contextlib.redirect_stdout(stdout):
        tap = TapNoko(config=config, state=state, catalog=catalog)
        try:
            tap.sync_all()
        except Exception as exc:
            if not expect_error:
                raise
            error = exc
    if expect_error and error is None:
        raise AssertionError("the sync was expected to fail")
    stdout.seek(0)
    return parse_output(stdout.read(), error)


def parse_output(stdout: str, error: Exception | None = None) -> TapRun:
    return TapRun([json.loads(line) for line in stdout.splitlines() if line.strip()], error)


TAP = str(Path(sys.executable).with_name("tap-noko"))


def run_cli(tmp_path: Path, *args: str, config: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    """`tap-noko ARGS [--config FILE]` as a user runs it, in its own process."""
    command = [TAP, *args]
    if config is not None:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        command += ["--config", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def select(catalog: dict[str, Any], streams: set[str], drop: dict[str, set[str]] | None = None) -> dict[str, Any]:
    """Select ``streams`` in a discovered catalog and deselect the top-level fields in ``drop``."""
    for stream in catalog["streams"]:
        name = stream["tap_stream_id"]
        for item in stream["metadata"]:
            crumb = item["breadcrumb"]
            if crumb == []:
                item["metadata"]["selected"] = name in streams
            elif len(crumb) == 2 and crumb[1] in (drop or {}).get(name, set()):
                item["metadata"]["selected"] = False
    return catalog


def only(stream: str) -> dict[str, Any]:
    """The tap's own catalog with just ``stream`` selected."""
    return select(TapNoko(config={"token": "x"}, validate_config=False).catalog_dict, {stream})


def by_id(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    result = {r["id"]: r for r in records}
    assert len(result) == len(records), "a record was emitted twice"
    return result
