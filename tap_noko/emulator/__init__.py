"""A local stand-in for the Noko v2 API, for tests, benchmarks and the demo.

>>> with Emulator(entries=100, rate_limit=False) as emu:   # doctest: +SKIP
...     requests.get(emu.base_url + "/entries", headers={...})
"""

from __future__ import annotations

import threading
from types import TracebackType

from tap_noko.emulator.server import DEFAULT_TOKEN, EntriesHook, Faults, NokoServer, Stats
from tap_noko.emulator.store import Store

__all__ = ["DEFAULT_TOKEN", "Emulator", "Faults", "Stats", "Store"]


class Emulator:
    """Serve a generated account on loopback from a background thread."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        seed: int = 1,
        entries: int = 2000,
        users: int = 12,
        projects: int = 25,
        tags: int = 40,
        rate_limit: bool = True,
        faults: Faults | None = None,
    ) -> None:
        self.token = token
        self.store = Store(seed=seed, entries=entries, users=users, projects=projects, tags=tags)
        self.server = NokoServer(
            (host, port), store=self.store, token=token, rate_limit=rate_limit, faults=faults or Faults()
        )
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v2"

    @property
    def control_url(self) -> str:
        return self.base_url.removesuffix("/v2") + "/_control"

    @property
    def faults(self) -> Faults:
        return self.server.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.server.faults = value

    @property
    def stats(self) -> Stats:
        return self.server.stats

    def reset_stats(self) -> None:
        self.server.stats = Stats()

    def hook_entries_request(self, request: int, *, edit: int = 0, delete: int = 0) -> None:
        """When the ``request``-th entries request arrives, change entries already served."""
        self.server.hooks.append(EntriesHook(request=request, edit=edit, delete=delete))

    def start(self) -> Emulator:
        self._thread = threading.Thread(target=self.server.serve_forever, name="noko-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.stop()
