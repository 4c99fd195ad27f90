"""Fixtures: real emulators on loopback ports, stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tap_noko.emulator import Emulator

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
