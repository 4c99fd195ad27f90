"""Stream schemas: one JSON Schema file per stream, shared fragments by ``$ref``.

Singer targets do not resolve ``$ref``, so every reference is inlined here and
SCHEMA messages and the catalog are self-contained.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any


def schemas_dir() -> Path:
    """Inside the wheel the files sit in the package; in a checkout, at the top level."""
    packaged = Path(__file__).parent / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "schemas"


def _inline(node: Any, base: Path, seen: tuple[Path, ...]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = (base / ref).resolve()
            if target in seen:
                raise ValueError(f"schema reference cycle: {' -> '.join(p.name for p in (*seen, target))}")
            fragment = json.loads(target.read_text(encoding="utf-8"))
            resolved = _inline(fragment, target.parent, (*seen, target))
            siblings = {k: _inline(v, base, seen) for k, v in node.items() if k != "$ref"}
            # Extending a fragment adds properties to it rather than replacing them.
            merged = {**resolved, **siblings}
            if "properties" in resolved and "properties" in siblings:
                merged["properties"] = {**resolved["properties"], **siblings["properties"]}
            return merged
        return {k: _inline(v, base, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(item, base, seen) for item in node]
    return node


@functools.cache
def _load(name: str) -> dict[str, Any]:
    path = schemas_dir() / f"{name}.json"
    resolved: dict[str, Any] = _inline(json.loads(path.read_text(encoding="utf-8")), path.parent, (path.resolve(),))
    return resolved


def load_schema(name: str) -> dict[str, Any]:
    """The self-contained schema of a stream (a fresh copy the caller may change)."""
    return copy.deepcopy(_load(name))
