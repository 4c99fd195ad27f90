"""End to end under Meltano: meltano.yml as shipped, into a real PostgreSQL and JSON lines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import psycopg
import pytest

from tap_noko.emulator import Emulator
from tap_noko.streams import EntriesStream

ROOT = Path(__file__).resolve().parent.parent
MELTANO = str(Path(sys.executable).with_name("meltano"))
Make = Callable[..., Emulator]
Meltano = Callable[..., subprocess.CompletedProcess[str]]
PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": int(os.environ.get("PGPORT", "5432")),
    "user": os.environ.get("PGUSER", "postgres"),
    # Trust auth ignores it, but target-postgres insists on having one.
    "password": os.environ.get("PGPASSWORD", "postgres"),
    "dbname": os.environ.get("PGDATABASE", "postgres"),
}


@pytest.fixture(scope="session")
def meltano_plugins() -> None:
    """The project's own plugins, installed once into .meltano/ as `meltano install` does."""
    result = subprocess.run(
        [MELTANO, "install", "tap-noko", "target-postgres", "target-jsonl"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture
def meltano(meltano_plugins: None, tmp_path: Path) -> Meltano:
    """Run meltano in the repository's project, with a system database of this test's own."""

    def run(*args: str, emu: Emulator, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {
            **os.environ,
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
            "MELTANO_ENVIRONMENT": "dev",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "TAP_NOKO_API_URL": emu.base_url,
            "TAP_NOKO_TOKEN": emu.token,
            **env,
        }
        result = subprocess.run(
            [MELTANO, *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=900, check=False
        )
        assert result.returncode == 0, result.stderr[-5000:]
        return result

    return run


@pytest.fixture
def postgres_schema() -> Iterator[tuple[psycopg.Connection[Any], str]]:
    try:
        conn = psycopg.connect(**PG, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL is not reachable at {PG['host']}:{PG['port']} ({exc})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the end-to-end test")
        pytest.skip(f"{reason}; set PGHOST/PGPORT/PGUSER/PGPASSWORD to run it")
    schema = f"noko_e2e_{uuid.uuid4().hex[:10]}"
    yield conn, schema
    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


def target_env(schema: str) -> dict[str, str]:
    return {
        "TARGET_POSTGRES_HOST": PG["host"],
        "TARGET_POSTGRES_PORT": str(PG["port"]),
        "TARGET_POSTGRES_USER": PG["user"],
        "TARGET_POSTGRES_PASSWORD": PG["password"],
        "TARGET_POSTGRES_DATABASE": PG["dbname"],
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
    }


def rows(conn: psycopg.Connection[Any], schema: str, table: str, columns: str) -> list[tuple[Any, ...]]:
    return conn.execute(f'SELECT {columns} FROM "{schema}"."{table}" ORDER BY id').fetchall()


def column_types(conn: psycopg.Connection[Any], schema: str, table: str) -> dict[str, str]:
    found = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
        (schema, table),
    ).fetchall()
    return dict(found)


def primary_key(conn: psycopg.Connection[Any], schema: str, table: str) -> list[str]:
    found = conn.execute(
        "SELECT kcu.column_name FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage"
        " kcu USING (constraint_schema, constraint_name) WHERE tc.table_schema = %s AND tc.table_name = %s"
        " AND tc.constraint_type = 'PRIMARY KEY'",
        (schema, table),
    ).fetchall()
    return [name for (name,) in found]


def expected_entries(emu: Emulator) -> list[tuple[Any, ...]]:
    return [
        (e["id"], e["minutes"], e["description"], e["updated_at"])
        for e in sorted(emu.store.entries(), key=lambda e: e["id"])
    ]


def landed_entries(conn: psycopg.Connection[Any], schema: str) -> list[tuple[Any, ...]]:
    return [
        (i, m, d, u.strftime("%Y-%m-%dT%H:%M:%SZ"))
        for i, m, d, u in rows(conn, schema, "entries", "id, minutes, description, updated_at")
    ]


def test_meltano_run_into_postgres_is_exact_incremental_and_idempotent(
    make_emulator: Make, meltano: Meltano, postgres_schema: tuple[psycopg.Connection[Any], str]
) -> None:
    conn, schema = postgres_schema
    emu = make_emulator(entries=800, rate_limit=True)
    meltano("run", "tap-noko", "target-postgres", emu=emu, **target_env(schema))

    for table in ("entries", "projects", "tags", "users"):
        expected = sorted(r["id"] for r in emu.store.records(table))
        assert [i for (i,) in rows(conn, schema, table, "id")] == expected, table
        assert primary_key(conn, schema, table) == ["id"]
    types = column_types(conn, schema, "entries")
    assert {
        k: types[k]
        for k in (
            "id",
            "minutes",
            "date",
            "billable",
            "description",
            "user",
            "project",
            "invoice",
            "created_at",
            "updated_at",
            "approved_at",
        )
    } == {
        "id": "bigint",
        "minutes": "bigint",
        "date": "date",
        "billable": "boolean",
        "description": "text",
        "user": "jsonb",
        "project": "jsonb",
        "invoice": "jsonb",
        "created_at": "timestamp without time zone",
        "updated_at": "timestamp without time zone",
        "approved_at": "timestamp without time zone",
    }
    assert column_types(conn, schema, "projects")["group"] == "jsonb"
    assert landed_entries(conn, schema) == expected_entries(emu)
    users = {r["id"]: r for r in emu.store.records("users")}
    for uid, email, teams in rows(conn, schema, "users", "id, email, teams"):
        assert (email, teams) == (users[uid]["email"], users[uid]["teams"])

    edited = emu.store.edit_entries(5)
    added = emu.store.add_entries(3)
    emu.store.clock.advance(EntriesStream.HORIZON_MARGIN_SECONDS + 1)
    emu.reset_stats()
    meltano("run", "tap-noko", "target-postgres", emu=emu, **target_env(schema))
    first_entries = next(dict(parse_qsl(r.query)) for r in emu.stats.requests if r.path == "entries")
    assert "updated_from" in first_entries  # Meltano passed the bookmark back: an incremental run
    assert len([r for r in emu.stats.requests if r.path == "entries"]) == 1
    assert landed_entries(conn, schema) == expected_entries(emu)
    assert {i for i, *_ in landed_entries(conn, schema)} >= set(edited) | set(added)
    meltano("run", "--full-refresh", "tap-noko", "target-postgres", emu=emu, **target_env(schema))
    assert landed_entries(conn, schema) == expected_entries(emu)
    ((count, distinct),) = conn.execute(f'SELECT count(*), count(DISTINCT id) FROM "{schema}".entries').fetchall()
    assert count == distinct == 803


def test_selection_in_meltano_is_honoured_end_to_end(make_emulator: Make, meltano: Meltano, tmp_path: Path) -> None:
    emu = make_emulator(entries=300)
    out = tmp_path / "out"
    out.mkdir()
    select = ["entries.id", "entries.minutes", "users.*"]
    meltano(
        "run",
        "tap-noko",
        "target-jsonl",
        emu=emu,
        TAP_NOKO__SELECT=json.dumps(select),
        TARGET_JSONL_DESTINATION_PATH=str(out),
    )
    assert sorted(p.name for p in out.iterdir()) == ["entries.jsonl", "users.jsonl"]
    entries = [json.loads(line) for line in (out / "entries.jsonl").read_text().splitlines()]
    # The key and the replication key always come along: the SDK includes them automatically.
    assert {tuple(sorted(e)) for e in entries} == {("id", "minutes", "updated_at")}
    assert sorted(e["id"] for e in entries) == sorted(e["id"] for e in emu.store.entries())
    users = [json.loads(line) for line in (out / "users.jsonl").read_text().splitlines()]
    assert sorted(users, key=lambda u: u["id"]) == sorted(emu.store.records("users"), key=lambda u: u["id"])
    assert set(emu.stats.paths()) == {"entries", "users"}


def test_the_readme_demo_command_works_from_a_fresh_copy(tmp_path: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    copy = tmp_path / "tap-noko"
    for name in files:
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "TAP_NOKO", "VIRTUAL_ENV"))}
    result = subprocess.run(
        ["scripts/demo"], cwd=copy, env=env, capture_output=True, text=True, timeout=1500, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    counts = {p.stem: len(p.read_text().splitlines()) for p in (copy / "output").glob("*.jsonl")}
    assert counts == {"entries": 2000, "projects": 25, "tags": 40, "users": 12}
    assert f"{copy}/output" in result.stdout
