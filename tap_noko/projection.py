"""Records cut to their schema and selection in one pass, instead of the SDK's per-record walks.

singer-sdk conforms every value of every record to its JSON type and then pops
deselected properties, recursively, in Python: about four times the CPU of
fetching and writing the record. Noko's JSON already has the schema's types
(JSON has no dates or bytes to convert), so what must still happen is only
this: drop what the schema does not declare (counted, reported once) and what
the catalog deselected. A record that has nothing to drop, the usual case, is
recognised with set comparisons done in C and passed on without a copy.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from typing import Any

Record = dict[str, Any]
Breadcrumb = tuple[str, ...]


class Projector:
    """Cuts records of one schema to what it declares and the catalog selects."""

    def __init__(self, schema: Mapping[str, Any], selected: Callable[[Breadcrumb], bool], path: str = "") -> None:
        self.undeclared: collections.Counter[str] = collections.Counter()
        self._project = self._compile(schema, selected, (), path)

    def __call__(self, record: Record) -> Record:
        projected: Record = self._project(record)
        return projected

    def _compile(
        self, schema: Mapping[str, Any], selected: Callable[[Breadcrumb], bool], crumb: Breadcrumb, path: str
    ) -> Callable[[Any], Any]:
        properties: Mapping[str, Any] = schema.get("properties") or {}
        declared = frozenset(properties)
        kept = frozenset(name for name in properties if selected((*crumb, "properties", name)))
        nested: list[tuple[str, Callable[[Any], Any]]] = []
        for name in kept:
            child = properties[name]
            types = child.get("type", [])
            sub_crumb = (*crumb, "properties", name)
            if "object" in types and child.get("properties"):
                nested.append((name, self._compile(child, selected, sub_crumb, f"{path}{name}.")))
            elif "array" in types and (child.get("items") or {}).get("properties"):
                item = self._compile(child["items"], selected, sub_crumb, f"{path}{name}[].")
                nested.append((name, _each(item)))
        everything_kept = kept == declared
        undeclared = self.undeclared

        def project(value: Any) -> Any:
            if not isinstance(value, dict):
                return value
            keys = value.keys()
            if not keys <= declared:
                for name in keys - declared:
                    undeclared[path + name] += 1
            elif everything_kept:
                # Nothing to drop here: only the nested objects may still need a cut.
                for name, child in nested:
                    inner = value.get(name)
                    if inner is not None:
                        cut = child(inner)
                        if cut is not inner:
                            value = {**value, name: cut}
                return value
            out = {name: value[name] for name in keys & kept}
            for name, child in nested:
                inner = out.get(name)
                if inner is not None:
                    out[name] = child(inner)
            return out

        return project


def _each(item: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def project(values: Any) -> Any:
        if not isinstance(values, list):
            return values
        cut = [item(v) for v in values]
        return values if all(a is b for a, b in zip(cut, values, strict=True)) else cut

    return project
