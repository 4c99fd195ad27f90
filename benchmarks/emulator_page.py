"""How fast the emulator serves a 1000-entry window page from a large account.

The tap benchmark must measure the tap, not the emulator: this checks that a
windowed page stays far below the tap's own per-page cost.

    python benchmarks/emulator_page.py [--entries 100000] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import requests

from tap_noko.emulator import Emulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    started = time.perf_counter()
    with Emulator(entries=args.entries, rate_limit=False) as emu:
        built = time.perf_counter() - started
        stamps = sorted(e["updated_at"] for e in emu.store.account.entries)
        session = requests.Session()
        headers = {"X-NokoToken": emu.token, "User-Agent": "benchmark"}
        timings = []
        step = max(1, (len(stamps) - 1000) // args.repeats)
        for i in range(args.repeats):
            lo, hi = stamps[i * step], stamps[min(len(stamps) - 1, i * step + 999)]
            params = {"per_page": 1000, "updated_from": lo, "updated_to": hi}
            t0 = time.perf_counter()
            response = session.get(f"{emu.base_url}/entries", params=params, headers=headers, timeout=30)
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
            assert len(response.json()) == 1000
    timings.sort()
    # Time to the last byte of the response, as the client sees it; JSON parsing is the client's cost.
    print(
        f"| entries | build s | median ms | p90 ms | max ms |\n|---|---|---|---|---|\n"
        f"| {args.entries} | {built:.1f} | {statistics.median(timings):.1f} | "
        f"{timings[int(len(timings) * 0.9) - 1]:.1f} | {timings[-1]:.1f} |"
    )


if __name__ == "__main__":
    main()
