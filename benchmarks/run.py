"""tap-noko against a raw-Python floor, side by side, and against Noko's rate limit.

    .venv/bin/python benchmarks/run.py [--entries 100000] [--repeats 5]

Starts the emulator in its own process (its CPU is never counted), then runs
`tap-noko --config … > /dev/null` and benchmarks/raw_floor.py alternately,
reading each child's CPU time and peak RSS from the kernel (wait4). Reports
medians and ranges, entries requests against ceil(N / page_size), peak RSS at
N and 3N, and a rate-limited sync against the bound requests ÷ 2 per second.
Writes BENCHMARKS.md at the repository root.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOKEN = "noko-demo-token"  # noqa: S105 - the emulator's public demo token
PAGE_SIZE = 1000


@dataclass
class Sample:
    cpu: float
    wall: float
    rss_mb: float


@contextmanager
def emulator(entries: int, *, rate_limit: bool) -> Iterator[str]:
    command = [str(BIN / "noko-emulator"), "--port", "0", "--entries", str(entries), "--token", TOKEN]
    if not rate_limit:
        command.append("--no-rate-limit")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure(command: list[str], env: dict[str, str]) -> Sample:
    """One run: wall from the outside, CPU and peak RSS of the child from wait4."""
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{command[0]} failed with exit code {proc.returncode}")
    return Sample(usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024)


def stats(api_url: str) -> dict[str, Any]:
    control = api_url.removesuffix("/v2") + "/_control"
    result: dict[str, Any] = requests.get(f"{control}/stats", timeout=30).json()
    return result


def tap_command(api_url: str, directory: Path, **overrides: Any) -> list[str]:
    config = {"token": TOKEN, "api_url": api_url, "page_size": PAGE_SIZE, "max_requests_per_second": 1000}
    config.update(overrides)
    path = directory / f"config-{len(list(directory.iterdir()))}.json"
    path.write_text(json.dumps(config))
    return [str(BIN / "tap-noko"), "--config", str(path)]


def summary(values: list[float], unit: str = "", digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f}{unit} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def count_records(command: list[str], env: dict[str, str]) -> int:
    # Streamed, not captured: a child's peak RSS starts from its parent's at fork, so this
    # process must stay small for the RSS figures to be the children's own.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    count = sum(1 for line in proc.stdout if json.loads(line)["type"] == "RECORD")
    assert proc.wait() == 0
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000, help="N, entries in the emulated account")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each side, interleaved")
    parser.add_argument("--rate-limited-entries", type=int, default=20_000)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    n = args.entries
    # A plain Python process: whatever this shell says about buffering applies to neither side.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    work = Path(tempfile.mkdtemp(prefix="tap-noko-bench-"))
    rows: list[str] = []

    with emulator(n, rate_limit=False) as api_url:
        tap = tap_command(api_url, work)
        raw = [sys.executable, str(ROOT / "benchmarks" / "raw_floor.py"), api_url, TOKEN, str(PAGE_SIZE)]
        records = count_records(tap, env)
        assert records == count_records(raw, env), "the tap and the floor must emit the same records"
        taps: list[Sample] = []
        raws: list[Sample] = []
        for _ in range(args.repeats):
            before = stats(api_url)["requests"].get("entries", 0)
            taps.append(measure(tap, env))
            entries_requests = stats(api_url)["requests"]["entries"] - before
            raws.append(measure(raw, env))
    ratios = [t.cpu / r.cpu for t, r in zip(taps, raws, strict=True)]
    ideal = math.ceil(n / PAGE_SIZE)
    rows += [
        f"| CPU seconds | {summary([t.cpu for t in taps], ' s')} | {summary([r.cpu for r in raws], ' s')} "
        f"| {summary(ratios, '×')} | ≤ 1.3× |",
        f"| wall seconds | {summary([t.wall for t in taps], ' s')} | {summary([r.wall for r in raws], ' s')} "
        f"| {summary([t.wall / r.wall for t, r in zip(taps, raws, strict=True)], '×')} | |",
        f"| records per second | {summary([records / t.wall for t in taps], '', 0)} "
        f"| {summary([records / r.wall for r in raws], '', 0)} | | |",
        f"| entries requests | {entries_requests} | {ideal} | {entries_requests / ideal:.2f}× ideal | ≤ 1.2× |",
        f"| peak RSS at N | {summary([t.rss_mb for t in taps], ' MB', 0)} "
        f"| {summary([r.rss_mb for r in raws], ' MB', 0)} | | ≤ 120 MB |",
    ]

    with emulator(3 * n, rate_limit=False) as api_url:
        big = [measure(tap_command(api_url, work), env) for _ in range(max(1, args.repeats // 2))]
    growth = statistics.median(s.rss_mb for s in big) / statistics.median(t.rss_mb for t in taps)
    rows.append(
        f"| peak RSS at 3N | {summary([s.rss_mb for s in big], ' MB', 0)} | | {growth:.2f}× the RSS at N | ≤ 1.10× |"
    )

    limited = args.rate_limited_entries
    with emulator(limited, rate_limit=True) as api_url:
        run = measure(tap_command(api_url, work, max_requests_per_second=2), env)
        seen = stats(api_url)
    bound = seen["total"] / 2
    rows += [
        f"| rate-limited sync, {limited} entries | {run.wall:.1f} s for {seen['total']} requests | bound "
        f"{bound:.1f} s | {run.wall / bound:.3f}× the bound | ≤ 1.05× |",
        f"| 429s in that sync | {seen['throttled']} | | | 0 |",
    ]

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    report = (
        f"""# Benchmarks

Made by `.venv/bin/python benchmarks/run.py --entries {n} --repeats {args.repeats}` on
{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC: {cpu}, {os.cpu_count()} cores, Python
{platform.python_version()}, {platform.system()} {platform.release()}. N = {n} entries (plus {records - n}
projects, tags and users), page size {PAGE_SIZE}, emulator in its own process with its rate limit off except
in the rate-limited rows. Each side ran {args.repeats} times, alternately; cells give the median and the range.
CPU is the child's user + system time; the ratio is taken run by run, tap over the floor that ran next to it.
The floor is `benchmarks/raw_floor.py`: requests + json, `Link: next`, one RECORD line per record.

| measure | tap-noko | raw floor | ratio | goal |
|---|---|---|---|---|
"""
        + "\n".join(rows)
        + "\n"
    )
    args.output.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
