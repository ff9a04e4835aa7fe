"""Attribute groups found in the training labels, for a dataset whose schema declares none.

Attributes that (almost) never appear on the same image, although their frequencies say they
would often meet if they were independent, fill one label slot: gender, colour, usage, season.
Such a set becomes a multiclass group (one softmax over its members plus "none"), which the
ablation in docs/ablation.md shows is worth far more than independent sigmoids.

Two numbers decide, both config values (`data.group_tolerance`, `data.group_min_evidence`):

- tolerance: the share of an attribute's images that may also carry another member of its
  group (label noise). 0 demands strict exclusivity.
- evidence: a member joins a group only if, were it independent of the group, it would be
  expected on at least this many of the group's images (n_i * n_group / N). Two rare attributes
  that never meet by chance are not a group; a rare colour beside the common colours is.

The search is greedy: seed a group with the exclusive pair of most evidence, grow it with the
exclusive attribute of most evidence, and repeat on what is left.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fashioncomp.data.dataset_reader import LabelledData, read_train
from fashioncomp.data.rare_labels import describe_merged, with_rare_merged
from fashioncomp.data.schema import AttributeGroup, Schema, SchemaError

__all__ = ["discover_groups", "with_discovered_groups", "describe_groups", "read_train_for_recipe"]


def discover_groups(attributes: np.ndarray, known: np.ndarray | None = None, tolerance: float = 0.01,
                    min_evidence: float = 5.0) -> list[tuple[int, ...]]:
    """Mutually exclusive attribute sets in a 0/1 label matrix ``[N, A]``.

    Only rows whose attributes are all known are counted. Returns the groups (each sorted,
    two members or more), ordered by their first attribute index.
    """
    y = np.asarray(attributes).astype(bool)
    if y.ndim != 2:
        raise ValueError(f"attributes must be [N, A], got shape {y.shape}")
    if known is not None:
        y = y[np.asarray(known, dtype=bool).all(axis=1)]
    n_rows, n_attr = y.shape
    if n_rows == 0 or n_attr < 2:
        return []
    yf = y.astype(np.float64)
    counts = yf.sum(axis=0)
    co = yf.T @ yf
    # pairwise exclusivity: each side loses at most `tolerance` of its images to the other
    exclusive = co <= tolerance * np.minimum(counts[:, None], counts[None, :])
    exclusive &= (counts[:, None] > 0) & (counts[None, :] > 0)
    np.fill_diagonal(exclusive, False)

    remaining = set(np.flatnonzero(counts > 0).tolist())
    groups: list[tuple[int, ...]] = []
    while True:
        seed = _best_seed(remaining, exclusive, counts, n_rows, min_evidence)
        if seed is None:
            break
        members = list(seed)
        covered = y[:, members].any(axis=1)
        while True:
            best, best_evidence = None, min_evidence
            for i in sorted(remaining - set(members)):
                if not exclusive[i, members].all():
                    continue
                clash = float((y[:, i] & covered).sum())
                evidence = counts[i] * covered.sum() / n_rows
                if clash <= tolerance * counts[i] and evidence >= best_evidence:
                    best, best_evidence = i, evidence
            if best is None:
                break
            members.append(best)
            covered |= y[:, best]
        groups.append(tuple(sorted(members)))
        remaining -= set(members)
    return sorted(groups)


def _best_seed(remaining: set[int], exclusive: np.ndarray, counts: np.ndarray, n_rows: int,
               min_evidence: float) -> tuple[int, int] | None:
    best, best_evidence = None, min_evidence
    for i in sorted(remaining):
        for j in sorted(remaining):
            if j <= i or not exclusive[i, j]:
                continue
            evidence = counts[i] * counts[j] / n_rows
            if evidence >= best_evidence:
                best, best_evidence = (i, j), evidence
    return best


def with_discovered_groups(schema: Schema, attributes: np.ndarray, known: np.ndarray | None,
                           tolerance: float, min_evidence: float) -> Schema:
    """`schema` with the groups found in the labels (a schema that declares groups is kept)."""
    if schema.groups:
        return schema
    found = discover_groups(attributes, known, tolerance, min_evidence)
    groups = tuple(AttributeGroup(f"group{k}", "multiclass", members, discovered=True)
                   for k, members in enumerate(found, start=1))
    return Schema(schema.categories, schema.attributes, groups)


def describe_groups(schema: Schema, groups: Sequence[AttributeGroup] | None = None) -> list[str]:
    """One line per group: `name (multiclass, found in the labels): a, b, c`."""
    lines = []
    for g in schema.groups if groups is None else groups:
        how = f"{g.type}, found in the labels" if g.discovered else g.type
        lines.append(f"{g.name} ({how}): {', '.join(schema.attributes[i] for i in g.indices)}")
    return lines


def read_train_for_recipe(data_root: Path, data_cfg: dict[str, Any], note: str = "") -> tuple[LabelledData, Schema]:
    """Validated training rows and the schema a recipe's `data` section asks for.

    The schema is `data.schema` if set, else `<root>/schema.json`, else counts from the data;
    without declared groups (and with `data.discover_groups`), the groups found in the labels
    are added and printed. `note` ends that printout (e.g. where the schema is saved). Attributes
    rarer than `data.merge_rare_below` are marked merged (printed too).
    """
    declared = None
    if data_cfg["schema"] is not None:
        if not Path(data_cfg["schema"]).is_file():
            raise SchemaError(f"data.schema: file not found: {data_cfg['schema']}")
        declared = Schema.load(Path(data_cfg["schema"]))
    data, schema = read_train(data_root, declared)
    if data_cfg["discover_groups"] and data_cfg["use_groups"] and not schema.groups:
        schema = with_discovered_groups(schema, data.attributes, data.attribute_known,
                                        data_cfg["group_tolerance"], data_cfg["group_min_evidence"])
        print(f"the schema declares no attribute groups; found {len(schema.groups)} in the training labels "
              f"(tolerance {data_cfg['group_tolerance']}, data.discover_groups: false turns this off):")
        for line in describe_groups(schema):
            print(f"  {line}")
        if note:
            print(f"  {note}")
    # after discovery: a group's rare members merge within that group (see rare_labels)
    schema = with_rare_merged(schema, data, data_cfg["merge_rare_below"])
    if schema.merged:
        print(describe_merged(schema, data, data_cfg["merge_rare_below"]))
    return data, schema
