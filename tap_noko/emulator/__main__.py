"""``noko-emulator`` / ``python -m tap_noko.emulator``: serve until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from tap_noko.emulator import DEFAULT_TOKEN, Emulator, Faults
from tap_noko.emulator.server import FAULT_KINDS


def _fault(value: str) -> tuple[str, int]:
    kind, _, every = value.partition("=")
    if kind not in FAULT_KINDS or not every.isdigit() or int(every) < 1:
        raise argparse.ArgumentTypeError(
            f"expected KIND=N with KIND one of {', '.join(FAULT_KINDS)} and N >= 1, got {value!r}"
        )
    return kind, int(every)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="noko-emulator", description="A local Noko v2 API for tests and demos.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--token", default=DEFAULT_TOKEN, help="the personal access token it accepts")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--entries", type=int, default=2000)
    p.add_argument("--users", type=int, default=12)
    p.add_argument("--projects", type=int, default=25)
    p.add_argument("--tags", type=int, default=40)
    p.add_argument("--no-rate-limit", action="store_true", help="serve as fast as possible (benchmarks)")
    faults = p.add_argument_group("fault injection")
    faults.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="KIND=N",
        help=f"every Nth API request fails as KIND: {', '.join(FAULT_KINDS)} (repeatable)",
    )
    faults.add_argument("--delay-seconds", type=float, default=2.0, help="how long the 'delay' fault waits")
    faults.add_argument("--retry-after", type=int, default=None, help="Retry-After seconds sent with injected 429s")
    faults.add_argument("--forbid", action="append", default=[], metavar="STREAM", help="this list answers 403")
    faults.add_argument("--opaque-links", action="store_true", help="Link URLs carry a cursor, not page numbers")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    emu = Emulator(
        host=args.host,
        port=args.port,
        token=args.token,
        seed=args.seed,
        entries=args.entries,
        users=args.users,
        projects=args.projects,
        tags=args.tags,
        rate_limit=not args.no_rate_limit,
        faults=Faults(
            every=dict(args.fault),
            delay_seconds=args.delay_seconds,
            retry_after=args.retry_after,
            forbidden=set(args.forbid),
            opaque_links=args.opaque_links,
        ),
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    emu.start()
    print(emu.base_url, flush=True)
    print(
        f"noko-emulator: {args.entries} entries, token {args.token!r}; control API at {emu.control_url}",
        file=sys.stderr,
        flush=True,
    )
    stop.wait()
    emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
