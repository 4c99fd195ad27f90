"""The README tells the truth: its settings table is the tap's own, its commands exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_settings_table_is_the_about_output() -> None:
    about = subprocess.run(
        [str(Path(sys.executable).with_name("tap-noko")), "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    table = [line for line in about.split("## Settings", 1)[1].splitlines() if line.startswith("|")]
    assert len(table) > 8
    assert "\n".join(table) in README


def test_the_two_commands_are_there_and_executable() -> None:
    for command in ("scripts/demo", "scripts/test"):
        assert f"{command}   #" in README
        assert (ROOT / command).stat().st_mode & 0o111
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
