"""Label schema of a dataset: category names, attribute names and attribute groups.

`schema.json` (optional, at the dataset root) looks like::

    {
      "categories": ["Tshirts", "Shirts", ...],          # index = category_label
      "attributes": ["Men", "Women", "Black", ...],      # index = attribute index
      "attribute_groups": {
        "gender": {"type": "multiclass", "attributes": ["Men", "Women"]},
        "parts":  {"type": "multilabel", "attributes": [5, 6, 7]}
      }
    }

Group members may be given by name or by index. A ``multiclass`` group has at most one
attribute per image (softmax over the group plus an implicit "none of these" class); a
``multilabel`` group allows any subset (independent sigmoids). Attributes that belong to no
group are treated as multilabel. Without a schema file, counts come from the data and names
are ``category_<i>`` / ``attribute_<i>``.

A run's own schema.json may also list ``"merged_rare": [names]``: the attributes rarer than
`data.merge_rare_below` in train.csv, merged into one "other" training label per task and never
predicted (see fashioncomp.data.rare_labels; init decides them afresh from the data).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence
from fashioncomp.errors import UserError
from fashioncomp.textfile import read_text_file

GROUP_TYPES = ("multiclass", "multilabel")


class SchemaError(UserError, ValueError):
    """schema.json is malformed or inconsistent."""


@dataclass(frozen=True)
class AttributeGroup:
    name: str
    type: str  # "multiclass" or "multilabel"
    indices: tuple[int, ...]
    # found in the training labels (see group_discovery): the labels may break exclusivity on a
    # few rows (noise), which is then tolerated instead of rejected
    discovered: bool = False

    @property
    def is_multiclass(self) -> bool:
        return self.type == "multiclass"


@dataclass(frozen=True)
class Schema:
    categories: tuple[str, ...]
    attributes: tuple[str, ...]
    groups: tuple[AttributeGroup, ...] = field(default_factory=tuple)
    # rare attributes merged into "other" for training (data.merge_rare_below); never predicted
    merged: tuple[int, ...] = ()

    @property
    def num_categories(self) -> int:
        return len(self.categories)

    @property
    def num_attributes(self) -> int:
        return len(self.attributes)

    @property
    def multiclass_groups(self) -> tuple[AttributeGroup, ...]:
        return tuple(g for g in self.groups if g.is_multiclass)

    def ungrouped_attributes(self) -> tuple[int, ...]:
        grouped = {i for g in self.groups for i in g.indices}
        return tuple(i for i in range(self.num_attributes) if i not in grouped)

    def without_groups(self) -> "Schema":
        """Same labels, every attribute an independent (multilabel) output."""
        return Schema(self.categories, self.attributes, (), self.merged)

    def structure(self) -> dict[str, Any]:
        """What fixes a network's shape and its tasks: counts, groups and merged rare attributes,
        not the display names."""
        shape: dict[str, Any] = {"categories": self.num_categories, "attributes": self.num_attributes,
                                 "groups": [[g.name, g.type, list(g.indices)] for g in self.groups]}
        if self.merged:  # only when set, so the digests of runs without merging stay as they were
            shape["merged"] = list(self.merged)
        return shape

    def structure_changes(self, other: "Schema") -> list[str]:
        """How `other` differs from this schema in structure, e.g. ["attributes 15 -> 16"]."""
        changes = [f"{what} {a} -> {b}" for what, a, b in (("categories", self.num_categories, other.num_categories),
                                                          ("attributes", self.num_attributes, other.num_attributes))
                   if a != b]
        mine, theirs = ({g.name: (g.type, g.indices) for g in s.groups} for s in (self, other))
        changed = sorted(name for name in set(mine) | set(theirs) if mine.get(name) != theirs.get(name))
        if changed:
            changes.append("attribute groups " + ", ".join(f"'{n}'" for n in changed))
        if self.merged != other.merged:
            changes.append(f"merged rare attributes {list(self.merged)} -> {list(other.merged)}")
        return changes

    def to_dict(self) -> dict[str, Any]:
        return {
            "categories": list(self.categories),
            "attributes": list(self.attributes),
            "attribute_groups": {
                g.name: {"type": g.type, "attributes": [self.attributes[i] for i in g.indices],
                         **({"discovered": True} if g.discovered else {})}
                for g in self.groups
            },
            **({"merged_rare": [self.attributes[i] for i in self.merged]} if self.merged else {}),
        }

    @staticmethod
    def default(num_categories: int, num_attributes: int) -> "Schema":
        return Schema(
            tuple(f"category_{i}" for i in range(num_categories)),
            tuple(f"attribute_{i}" for i in range(num_attributes)),
        )

    @staticmethod
    def from_dict(raw: dict[str, Any], source: str = "schema.json") -> "Schema":
        if not isinstance(raw, dict):
            raise SchemaError(f"{source}: expected a JSON object at the top level")
        categories = _name_list(raw, "categories", source)
        attributes = _name_list(raw, "attributes", source)
        index_of = {name: i for i, name in enumerate(attributes)}
        groups: list[AttributeGroup] = []
        seen: dict[int, str] = {}
        raw_groups = raw.get("attribute_groups", {}) or {}
        if not isinstance(raw_groups, dict):
            raise SchemaError(f"{source}: 'attribute_groups' must be an object of name -> group")
        for name, spec in raw_groups.items():
            where = f"{source}: attribute group '{name}'"
            if not isinstance(spec, dict) or "attributes" not in spec:
                raise SchemaError(f"{where}: expected {{'type': ..., 'attributes': [...]}}")
            gtype = spec.get("type", "multilabel")
            if gtype not in GROUP_TYPES:
                raise SchemaError(f"{where}: type '{gtype}' is not one of {GROUP_TYPES}")
            indices = _attribute_indices(spec["attributes"], index_of, len(attributes), where)
            for member in indices:
                if member in seen:
                    raise SchemaError(f"{where}: attribute {member} is already in group '{seen[member]}'")
                seen[member] = name
            if not indices:
                raise SchemaError(f"{where}: has no attributes")
            discovered = spec.get("discovered", False)
            if not isinstance(discovered, bool):
                raise SchemaError(f"{where}: 'discovered' must be true or false, got {discovered!r}")
            groups.append(AttributeGroup(str(name), gtype, tuple(indices), discovered))
        merged = _attribute_indices(raw.get("merged_rare", []) or [], index_of, len(attributes),
                                    f"{source}: 'merged_rare'")
        return Schema(tuple(categories), tuple(attributes), tuple(groups), tuple(sorted(set(merged))))

    @staticmethod
    def load(path: Path) -> "Schema":
        try:
            raw = json.loads(read_text_file(path))
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        return Schema.from_dict(raw, source=str(path))


def _attribute_indices(members: Any, index_of: dict[str, int], n_attributes: int, where: str) -> list[int]:
    """Attribute names or indices as indices (a list of names/indices, each checked)."""
    if not isinstance(members, list):
        raise SchemaError(f"{where}: expected a list of attribute names or indices, got {members!r}")
    out = []
    for member in members:
        if isinstance(member, bool) or not isinstance(member, (int, str)):
            raise SchemaError(f"{where}: member {member!r} is neither a name nor an index")
        if isinstance(member, str):
            if member not in index_of:
                raise SchemaError(f"{where}: unknown attribute name '{member}'")
            member = index_of[member]
        if not 0 <= member < n_attributes:
            raise SchemaError(f"{where}: attribute index {member} out of range 0..{n_attributes - 1}")
        out.append(member)
    return out


def _name_list(raw: dict[str, Any], key: str, source: str) -> list[str]:
    names = raw.get(key)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise SchemaError(f"{source}: '{key}' must be a non-empty list of names")
    if len(set(names)) != len(names):
        raise SchemaError(f"{source}: '{key}' has duplicate names")
    return names

