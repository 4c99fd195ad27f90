"""Rate limit, fault knobs, opaque links, mutations, hooks and the CLI, over real HTTP."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tap_noko.emulator import Emulator, Faults
from tests.emulator.test_api import walk

Get = Callable[..., requests.Response]
Make = Callable[..., Emulator]


def test_burst_gets_empty_429s_after_five_wait(make_emulator: Make) -> None:
    emu = make_emulator(entries=10, rate_limit=True)
    results: list[requests.Response] = []
    lock = threading.Lock()

    def hit() -> None:
        response = requests.get(
            f"{emu.base_url}/tags", headers={"X-NokoToken": emu.token, "User-Agent": "t"}, timeout=30
        )
        with lock:
            results.append(response)

    threads = [threading.Thread(target=hit) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.status_code for r in results)
    # 2 answered at once, 5 queued and answered later, the other 5 refused.
    assert codes == [200] * 7 + [429] * 5
    for response in results:
        if response.status_code == 429:
            assert response.content == b""
            assert "Retry-After" not in response.headers
            assert response.headers["Date"]
    assert emu.stats.throttled == 5


def test_sequential_requests_are_slowed_to_two_per_second(make_emulator: Make, api: Get) -> None:
    emu = make_emulator(entries=10, rate_limit=True)
    started = time.monotonic()
    statuses = [api(emu, "tags").status_code for _ in range(5)]
    elapsed = time.monotonic() - started
    assert statuses == [200] * 5
    assert elapsed >= 1.5
    stamps = [r.answered for r in emu.stats.requests]
    assert all(later - earlier >= 0.99 for earlier, later in zip(stamps, stamps[2:], strict=False))


def test_no_rate_limit_serves_bursts(make_emulator: Make, api: Get) -> None:
    emu = make_emulator(entries=10, rate_limit=False)
    assert [api(emu, "tags").status_code for _ in range(10)] == [200] * 10


@pytest.mark.parametrize(
    ("kind", "status", "content_type", "check"),
    [
        ("500", 500, "application/json", lambda body: json.loads(body)["message"] == "Internal Server Error"),
        ("502", 502, "text/html", lambda body: body.startswith(b"<html>")),
        ("504", 504, "text/html", lambda body: b"Gateway" in body),
        ("503", 503, "application/json", lambda body: "migrated" in json.loads(body)["message"]),
        ("badjson", 200, "text/html", lambda body: body.startswith(b"<html>")),
    ],
)
def test_every_nth_request_fails_as_asked(
    make_emulator: Make, api: Get, kind: str, status: int, content_type: str, check: Callable[[bytes], bool]
) -> None:
    emu = make_emulator(entries=10, faults=Faults(every={kind: 3}))
    responses = [api(emu, "tags") for _ in range(6)]
    assert [r.status_code for r in responses] == [200, 200, status, 200, 200, status]
    for bad in (responses[2], responses[5]):
        assert bad.headers["Content-Type"].startswith(content_type)
        assert check(bad.content)


def test_injected_429_with_and_without_retry_after(make_emulator: Make, api: Get) -> None:
    emu = make_emulator(entries=10, faults=Faults(every={"429": 2}, retry_after=7))
    responses = [api(emu, "tags") for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 429]
    assert responses[1].headers["Retry-After"] == "7"
    assert responses[1].content == b""
    emu.faults = Faults(every={"429": 1})
    plain = api(emu, "tags")
    assert plain.status_code == 429 and "Retry-After" not in plain.headers


def test_throttle_window_answers_429_to_everything(make_emulator: Make, api: Get) -> None:
    emu = make_emulator(entries=10)
    emu.faults.throttle_for(60)
    assert [api(emu, "tags").status_code for _ in range(3)] == [429] * 3
    emu.faults.throttle_until = 0
    assert api(emu, "tags").status_code == 200
    assert emu.stats.throttled == 3


def _raw_get(emu: Emulator, path: str) -> http.client.HTTPResponse:
    host, port = emu.server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
    conn.request("GET", f"/v2/{path}", headers={"X-NokoToken": emu.token, "User-Agent": "t"})
    return conn.getresponse()


def test_drop_closes_the_connection_without_an_answer(make_emulator: Make, api: Get) -> None:
    emu = make_emulator(entries=10, faults=Faults(every={"drop": 1}))
    with pytest.raises(http.client.RemoteDisconnected):
        _raw_get(emu, "tags")
    with pytest.raises(requests.ConnectionError):
        api(emu, "tags")


def test_truncate_sends_less_than_content_length(make_emulator: Make, api: Get) -> None:
    emu = make_emulator(entries=10, faults=Faults(every={"truncate": 1}))
    response = _raw_get(emu, "tags")
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api(emu, "tags")


def test_delay_answers_late_but_correctly(make_emulator: Make, api: Get) -> None:
    emu = make_emulator(entries=10, faults=Faults(every={"delay": 1}, delay_seconds=0.6))
    started = time.monotonic()
    response = api(emu, "tags")
    assert time.monotonic() - started >= 0.6
    assert response.status_code == 200 and len(response.json()) == 30
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{emu.base_url}/tags", headers={"X-NokoToken": emu.token, "User-Agent": "t"}, timeout=0.2)


def test_forbidden_stream_answers_403_only_there(make_emulator: Make, api: Get) -> None:
    emu = make_emulator(entries=10, faults=Faults(forbidden={"users"}))
    forbidden = api(emu, "users")
    assert forbidden.status_code == 403
    assert "permission" in forbidden.json()["message"]
    assert api(emu, "tags").status_code == 200


def test_opaque_links_catch_hand_built_page_urls(make_emulator: Make, api: Get) -> None:
    emu = make_emulator(entries=250, faults=Faults(opaque_links=True))
    first = api(emu, "entries", per_page=100, billable="true")
    next_url = first.links["next"]["url"]
    assert "page=" not in next_url and "cursor=" in next_url
    # A client that builds its own page URL just gets page 1 again.
    assert api(emu, "entries", per_page=100, billable="true", page=2).json() == first.json()
    records, pages = walk(api, emu, "entries", per_page=100, billable="true")
    expected = [e for e in emu.store.entries() if e["billable"]]
    assert records == expected and pages == -(-len(expected) // 100)
    # Adding parameters to a cursor URL is a client bug too.
    assert api(emu, next_url + "&per_page=100").status_code == 400


def test_mutations_from_python(make_emulator: Make, api: Get) -> None:
    emu = make_emulator(entries=50)
    emu.store.clock.advance(3600)
    now = emu.store.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    edited = emu.store.edit_entries(5)
    by_id = {e["id"]: e for e in api(emu, "entries", per_page=1000).json()}
    assert len(edited) == 5 and all(by_id[i]["updated_at"] == now for i in edited)
    assert all("(edited ✎)" in by_id[i]["description"] for i in edited)
    deleted = emu.store.delete_entries(3)
    added = emu.store.add_entries(4)
    ids = {e["id"] for e in api(emu, "entries", per_page=1000).json()}
    assert len(ids) == 51 and not ids & set(deleted) and set(added) <= ids
    window = api(emu, "entries", per_page=1000, updated_from=now).json()
    assert sorted(e["id"] for e in window) == sorted(set(edited + added) - set(deleted))


def test_control_api_over_http(make_emulator: Make) -> None:
    emu = make_emulator(entries=20)
    control = emu.control_url
    assert requests.post(f"{control}/clock", json={"advance": 10}, timeout=10).json() == {"offset": 10.0}
    assert len(requests.post(f"{control}/edit", json={"count": 2}, timeout=10).json()["ids"]) == 2
    assert len(requests.post(f"{control}/add", json={"count": 3}, timeout=10).json()["ids"]) == 3
    assert len(requests.post(f"{control}/delete", json={"count": 1}, timeout=10).json()["ids"]) == 1
    assert len(requests.get(f"{control}/entries", timeout=10).json()) == 22
    faults = requests.post(f"{control}/faults", json={"every": {"500": 2}, "forbidden": ["tags"]}, timeout=10)
    assert faults.json()["every"] == {"500": 2} and emu.faults.forbidden == {"tags"}
    assert requests.post(f"{control}/faults", json={"every": {"boom": 1}}, timeout=10).status_code == 400
    requests.get(f"{emu.base_url}/tags", headers={"User-Agent": "t"}, timeout=10)
    stats = requests.get(f"{control}/stats", timeout=10).json()
    assert stats == {"requests": {"tags": 1}, "total": 1, "throttled": 0, "token_in_query": False}
    assert requests.get(f"{control}/nope", timeout=10).status_code == 404


def test_hook_changes_served_entries_on_the_kth_entries_request(make_emulator: Make, api: Get) -> None:
    emu = make_emulator(entries=300)
    emu.hook_entries_request(3, edit=4, delete=2)
    before = {e["id"]: e for e in emu.store.entries()}
    first = api(emu, "entries", per_page=100)
    second = api(emu, first.links["next"]["url"])
    served = {e["id"] for e in first.json() + second.json()}
    assert emu.store.entries() == list(before.values())
    api(emu, second.links["next"]["url"])
    after = {e["id"]: e for e in emu.store.entries()}
    deleted = set(before) - set(after)
    changed = {i for i in after if after[i] != before[i]}
    assert len(deleted) == 2 and deleted <= served
    assert len(changed) == 4 and changed <= served


def test_request_log_records_what_clients_send(make_emulator: Make, api: Get) -> None:
    emu = make_emulator(entries=10)
    api(emu, "entries", per_page=5)
    api(emu, "tags", token="", noko_token=emu.token)
    logged: list[dict[str, Any]] = [vars(r) for r in emu.stats.requests]
    assert [(r["path"], r["query"], r["status"], r["token_header"]) for r in logged] == [
        ("entries", "per_page=5", 200, True),
        ("tags", f"noko_token={emu.token}", 200, True),
    ]
    assert emu.stats.paths() == {"entries": 1, "tags": 1}


def test_cli_prints_base_url_first_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tap_noko.emulator",
            "--port",
            "0",
            "--entries",
            "40",
            "--token",
            "t0k",
            "--fault",
            "500=2",
            "--forbid",
            "users",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:") and base.endswith("/v2")
        headers = {"X-NokoToken": "t0k", "User-Agent": "t"}
        assert requests.get(f"{base}/entries?per_page=100", headers=headers, timeout=10).status_code == 200
        assert requests.get(f"{base}/entries?per_page=100", headers=headers, timeout=10).status_code == 500
        assert len(requests.get(f"{base}/entries?per_page=100", headers=headers, timeout=10).json()) == 40
        assert requests.get(f"{base}/users", headers=headers, timeout=10).status_code == 500
        assert requests.get(f"{base}/users", headers=headers, timeout=10).status_code == 403
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_cli_rejects_unknown_fault() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tap_noko.emulator", "--fault", "boom=2"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "KIND=N" in result.stderr
