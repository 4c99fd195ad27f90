"""The base stream under Noko's bad moments: throttle, retries, clear failures, token safety."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tap_noko.client import NokoError
from tap_noko.emulator import Emulator, Faults
from tests.conftest import TAP, by_id, parse_output, run_cli, run_tap, tap_config

Make = Callable[..., Emulator]
STREAMS = ("entries", "projects", "tags", "users")
TOKEN = "tok-Zq9-s3cr3t-do-not-log"


def assert_equal_to_emulator(run: Any, emu: Emulator) -> None:
    for stream in STREAMS:
        assert by_id(run.records(stream)) == by_id(emu.store.records(stream)), stream


# -- throttle and 429 ------------------------------------------------------------------------------


def test_the_throttle_keeps_a_whole_run_under_nokos_limit(make_emulator: Make) -> None:
    emu = make_emulator(entries=2500, rate_limit=True)
    run = run_tap(tap_config(emu, max_requests_per_second=2, page_size=500))
    assert_equal_to_emulator(run, emu)
    arrived = [r.arrived for r in emu.stats.requests]
    assert len(arrived) >= 8
    # No three consecutive requests within one second, across streams; and none refused.
    assert min(later - first for first, later in zip(arrived, arrived[2:], strict=False)) >= 1.0
    assert emu.stats.throttled == 0


def test_retry_after_is_honoured(make_emulator: Make) -> None:
    emu = make_emulator(entries=300, faults=Faults(every={"429": 3}, retry_after=2))
    run = run_tap(tap_config(emu, page_size=50))
    assert_equal_to_emulator(run, emu)
    requests = emu.stats.requests
    refused = [i for i, r in enumerate(requests) if r.status == 429]
    assert len(refused) >= 2
    for i in refused:
        assert requests[i + 1].arrived - requests[i].answered >= 2.0


@pytest.mark.slow
def test_a_minute_of_429s_is_survived_and_the_pace_kept(make_emulator: Make) -> None:
    emu = make_emulator(entries=600, rate_limit=True)
    emu.faults.throttle_for(60)
    run = run_tap(tap_config(emu, max_requests_per_second=2, page_size=200))
    assert_equal_to_emulator(run, emu)
    served = [r for r in emu.stats.requests if r.status == 200]
    assert emu.stats.throttled >= 5
    assert served[0].arrived - emu.stats.requests[0].arrived >= 59
    arrived = [r.arrived for r in served]
    assert min(later - first for first, later in zip(arrived, arrived[2:], strict=False)) >= 1.0


# -- transient failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "502", "503", "504", "drop", "truncate", "badjson", "delay"])
def test_transient_failures_are_retried_until_the_data_is_complete(make_emulator: Make, kind: str) -> None:
    emu = make_emulator(entries=1500, faults=Faults(every={kind: 3}, delay_seconds=3))
    run = run_tap(tap_config(emu, page_size=400, request_timeout=1))
    assert_equal_to_emulator(run, emu)
    statuses = [r.status for r in emu.stats.requests]
    assert statuses.count(200) >= 6
    expected_failures = len(statuses) // 3
    if kind in ("500", "502", "503", "504"):
        assert statuses.count(int(kind)) == expected_failures


def test_giving_up_names_the_endpoint_and_what_was_seen(make_emulator: Make, quick_retries: None) -> None:
    emu = make_emulator(entries=50, token=TOKEN, faults=Faults(every={"502": 1}))
    with pytest.raises(NokoError) as caught:
        run_tap(tap_config(emu))
    message = str(caught.value)
    assert "/v2/entries" in message and "entries stream" in message
    assert "HTTP 502 Bad Gateway (text/html" in message
    assert TOKEN not in message
    assert len(emu.stats.requests) >= 3


# -- failures that retrying cannot fix ---------------------------------------------------------------


BOOKMARK = {
    "bookmarks": {"entries": {"replication_key": "updated_at", "replication_key_value": "2024-06-01T00:00:00Z"}}
}


def with_state(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "state.json").write_text(json.dumps(BOOKMARK))
    return "--state", str(tmp_path / "state.json")


def assert_bookmark_unmoved(stdout: str) -> None:
    for state in parse_output(stdout).states:
        assert state["bookmarks"]["entries"] == BOOKMARK["bookmarks"]["entries"]


def test_401_stops_at_once_with_advice(make_emulator: Make, tmp_path: Path) -> None:
    emu = make_emulator(entries=50)
    result = run_cli(tmp_path, *with_state(tmp_path), config=tap_config(emu, token=TOKEN))
    assert result.returncode == 1
    assert_bookmark_unmoved(result.stdout)
    assert "Noko rejected the token (HTTP 401 on /v2/entries)" in result.stderr
    assert "meltano config tap-noko set token" in result.stderr
    assert len(emu.stats.requests) == 1
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize("forbidden", ["entries", "users"])
def test_403_names_the_stream_and_moves_no_bookmark(make_emulator: Make, tmp_path: Path, forbidden: str) -> None:
    emu = make_emulator(entries=300, faults=Faults(forbidden={forbidden}))
    result = run_cli(tmp_path, *with_state(tmp_path), config=tap_config(emu))
    assert result.returncode == 1
    assert f"Noko answered 403 Forbidden for the {forbidden} stream" in result.stderr
    assert f"meltano select tap-noko --rm {forbidden}" in result.stderr
    assert [r.status for r in emu.stats.requests].count(403) == 1
    written = parse_output(result.stdout).states
    if forbidden == "entries":
        assert_bookmark_unmoved(result.stdout)
    else:  # entries finished before users failed: its bookmark may move, to exactly what it emitted
        emitted = [
            json.loads(line)["record"]["updated_at"]
            for line in result.stdout.splitlines()
            if '"type":"RECORD"' in line and '"stream":"entries"' in line
        ]
        assert written[-1]["bookmarks"]["entries"]["replication_key_value"] == max(emitted)


def test_404_says_api_url_is_probably_wrong(make_emulator: Make, tmp_path: Path) -> None:
    emu = make_emulator(entries=10)
    result = run_cli(
        tmp_path, *with_state(tmp_path), config=tap_config(emu, api_url=emu.base_url.replace("/v2", "/v3"))
    )
    assert result.returncode == 1
    assert_bookmark_unmoved(result.stdout)
    assert "404 Not Found for /v3/entries" in result.stderr and "`api_url` is probably wrong" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"token": ""}, "The `token` setting is missing or empty"),
        ({"api_url": "http://api.nokotime.com/v2"}, "uses plain http to a host that is not this machine"),
        ({"api_url": "api.nokotime.com"}, "must be an absolute URL"),
        ({"start_date": "last tuesday"}, "The `start_date` setting 'last tuesday' is not a date"),
        ({"page_size": 0}, "The `page_size` setting must be a whole number from 1 to 1000; got 0"),
        ({"page_size": 5000}, "The `page_size` setting must be a whole number from 1 to 1000; got 5000"),
        ({"max_requests_per_second": 0}, "The `max_requests_per_second` setting must be a number above 0"),
        ({"request_timeout": 0}, "The `request_timeout` setting must be a number from 1 to 600; got 0"),
    ],
)
def test_bad_config_is_refused_before_any_request(
    make_emulator: Make, tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    emu = make_emulator(entries=10)
    result = run_cli(tmp_path, config=tap_config(emu, **overrides))
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stdout == ""
    assert emu.stats.requests == []


def test_missing_token_key_is_one_clear_message(tmp_path: Path) -> None:
    result = run_cli(tmp_path, config={"api_url": "http://127.0.0.1:9/v2"})
    assert result.returncode == 1
    assert result.stderr.count("The `token` setting is missing or empty") == 1


def test_sigterm_exits_non_zero(make_emulator: Make, tmp_path: Path) -> None:
    emu = make_emulator(entries=3000, rate_limit=True)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(tap_config(emu, max_requests_per_second=2, page_size=100)))
    proc = subprocess.Popen([TAP, "--config", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if '"type":"RECORD"' in line:
            break
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + 15
    assert "Stopped by signal 15" in err


# -- the token stays home ----------------------------------------------------------------------------


def test_the_token_appears_nowhere_even_in_debug_logs(make_emulator: Make, tmp_path: Path) -> None:
    emu = make_emulator(entries=700, token=TOKEN, faults=Faults(every={"500": 4, "429": 7}, retry_after=1))
    (tmp_path / "logging.yaml").write_text(
        "version: 1\nroot: {level: DEBUG, handlers: [err]}\n"
        "handlers: {err: {class: logging.StreamHandler, stream: ext://sys.stderr}}\n"
    )
    config = tap_config(emu, token=TOKEN)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    env = {"PATH": str(Path(sys.executable).parent), "SINGER_SDK_LOG_CONFIG": str(tmp_path / "logging.yaml")}
    sync = subprocess.run(
        [TAP, "--config", str(path)], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert sync.returncode == 0, sync.stderr
    assert "Validating config using jsonschema" in sync.stderr  # a DEBUG line: the level took
    discover = subprocess.run(
        [TAP, "--config", str(path), "--discover"], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    about = subprocess.run(
        [TAP, "--config", str(path), "--about"], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    for result in (sync, discover, about):
        assert TOKEN not in result.stdout + result.stderr
    assert emu.stats.token_in_query is False
    assert all(r.token_header for r in emu.stats.requests)


def test_a_next_link_to_another_host_is_not_followed(make_emulator: Make) -> None:
    other = make_emulator(entries=10)
    emu = make_emulator(entries=100, token=TOKEN, faults=Faults(link_origin=other.base_url.removesuffix("/v2")))
    with pytest.raises(NokoError) as caught:
        run_tap(tap_config(emu, page_size=10))
    assert "tap-noko does not follow it, so that the token is never sent to another host" in str(caught.value)
    assert other.stats.requests == []
    assert TOKEN not in str(caught.value)


def test_a_redirect_to_another_host_does_not_carry_the_token(make_emulator: Make) -> None:
    other = make_emulator(entries=10)
    emu = make_emulator(
        entries=10,
        token=TOKEN,
        faults=Faults(redirect_to=other.base_url.removesuffix("/v2").replace("127.0.0.1", "localhost")),
    )
    with pytest.raises(NokoError) as caught:
        run_tap(tap_config(emu))
    assert "Noko rejected the token (HTTP 401" in str(caught.value)
    assert [(r.path, r.token_header) for r in other.stats.requests] == [("entries", False)]
