"""The tap as users run it: the SDK standard suite, discovery, catalog selection, executables."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from singer_sdk.testing import get_tap_test_class

from tap_noko.emulator import Emulator
from tap_noko.tap import TapNoko
from tests.conftest import by_id, parse_output, run_cli, select, tap_config

Make = Callable[..., Emulator]

# The standard suite takes its config when the class is made, so this emulator starts at import.
_STANDARD = Emulator(entries=400, rate_limit=False, seed=11).start()
TestTapNokoStandard = get_tap_test_class(TapNoko, config=tap_config(_STANDARD))


@pytest.fixture(scope="module", autouse=True)
def _stop_standard_emulator() -> Iterator[None]:
    yield
    _STANDARD.stop()


def test_discovery_lists_four_streams_with_keys_and_metadata(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--discover")
    assert result.returncode == 0, result.stderr
    catalog = json.loads(result.stdout)
    streams = {s["tap_stream_id"]: s for s in catalog["streams"]}
    assert sorted(streams) == ["entries", "projects", "tags", "users"]
    for name, stream in streams.items():
        assert stream["key_properties"] == ["id"]
        top = next(m["metadata"] for m in stream["metadata"] if m["breadcrumb"] == [])
        assert top["table-key-properties"] == ["id"]
        if name == "entries":
            assert (stream["replication_method"], stream["replication_key"]) == ("INCREMENTAL", "updated_at")
            assert top["valid-replication-keys"] == ["updated_at"]
        else:
            assert stream["replication_method"] == "FULL_TABLE"
        assert "$ref" not in json.dumps(stream["schema"])
    entry = streams["entries"]["schema"]["properties"]
    assert entry["id"] == {"type": ["integer"]} or entry["id"]["type"] in ("integer", ["integer"])
    assert entry["minutes"]["type"] == ["integer", "null"]
    assert entry["date"] == {"type": ["string", "null"], "format": "date"}
    assert entry["updated_at"]["format"] == "date-time"
    assert entry["tags"]["items"]["properties"]["billable"]["type"] == ["boolean", "null"]
    assert entry["invoice"]["properties"]["total_amount"]["type"] == ["number", "null"]
    python_m = subprocess.run(
        [sys.executable, "-m", "tap_noko", "--discover"], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(python_m.stdout) == catalog


def test_a_catalog_that_deselects_streams_and_fields_is_honoured(make_emulator: Make, tmp_path: Path) -> None:
    emu = make_emulator(entries=300)
    catalog = json.loads(run_cli(tmp_path, "--discover").stdout)
    catalog = select(catalog, {"entries", "projects"}, {"entries": {"description", "tags"}, "projects": {"color"}})
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    result = run_cli(tmp_path, "--catalog", str(tmp_path / "catalog.json"), config=tap_config(emu))
    assert result.returncode == 0, result.stderr
    out = parse_output(result.stdout).messages
    assert {m["stream"] for m in out if m["type"] in ("SCHEMA", "RECORD")} == {"entries", "projects"}
    assert set(emu.stats.paths()) == {"entries", "projects"}
    schema = next(m["schema"] for m in out if m["type"] == "SCHEMA" and m["stream"] == "entries")
    assert "description" not in schema["properties"] and "tags" not in schema["properties"]
    for stream, dropped in (("entries", {"description", "tags"}), ("projects", {"color"})):
        got = by_id([m["record"] for m in out if m["type"] == "RECORD" and m["stream"] == stream])
        expected = {
            i: {k: v for k, v in r.items() if k not in dropped} for i, r in by_id(emu.store.records(stream)).items()
        }
        assert got == expected


def test_the_wheel_installs_and_discovers_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(root)], check=True, timeout=600
    )
    wheel = next(dist.glob("tap_noko-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    # The dependencies come from this virtualenv's own site-packages rather than the network.
    site = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    (next((venv / "lib").glob("python3*")) / "site-packages" / "deps.pth").write_text(str(site))
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, timeout=600)
    work = tmp_path / "elsewhere"
    work.mkdir()
    result = subprocess.run(
        [str(venv / "bin" / "tap-noko"), "--discover"],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    catalog = json.loads(result.stdout)
    assert len(catalog["streams"]) == 4
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import tap_noko.schema as s; print(s.schemas_dir())"],
        capture_output=True,
        text=True,
        cwd=work,
        check=True,
        timeout=60,
    ).stdout.strip()
    assert installed.startswith(str(venv)) and Path(installed, "shared", "simple_user.json").is_file()
    shutil.rmtree(venv)
