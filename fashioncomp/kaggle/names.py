"""Kaggle names checked against the limits the Kaggle CLI and server enforce, before anything is
built or uploaded (the CLI would only refuse them after a build, or the server after an upload).

    kernel   owner/slug, slug 5-50 characters; its title (the slug with spaces) 5-50 characters
    dataset  owner/slug, slug 6-50 characters; its title 6-50 characters
    competition  slug, 3-50 characters

Kaggle derives a kernel's slug from its title (lowercase, runs of other characters -> one dash),
so a slug is lowercase words of letters and digits joined by single dashes: then the title
`build` derives from it gives the same slug back.
"""
from __future__ import annotations

import re

from fashioncomp.errors import UserError

OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# (min, max) lengths: kaggle 2.x `kernels push` refuses titles under 5 characters, the server
# fails on kernel titles over 50; `datasets create` refuses dataset slugs and titles outside 6-50
SLUG_LENGTHS = {"kernel": (5, 50), "dataset": (6, 50), "competition": (3, 50)}
TITLE_LENGTHS = {"kernel": (5, 50), "dataset": (6, 50)}


class KaggleNameError(UserError):
    """A kernel, dataset or competition name that the Kaggle CLI or server would refuse."""


def slug_of_title(title: str) -> str:
    """The slug Kaggle derives from an ASCII title (python-slugify's rule: lowercase, every run of
    other characters -> one dash)."""
    return "-".join(re.findall(r"[a-z0-9]+", title.lower()))


def _check_length(text: str, limits: tuple[int, int], what: str, thing: str) -> None:
    low, high = limits
    if not low <= len(text) <= high:
        raise KaggleNameError(f"{what}: {thing} '{text}' has {len(text)} characters; Kaggle takes {low}-{high}")


def check_slug(slug: str, kind: str, what: str) -> str:
    """A `kind` slug ("kernel", "dataset", "competition"): its characters and its length."""
    if not SLUG.fullmatch(slug or ""):
        raise KaggleNameError(f"{what}: '{slug}' is not a Kaggle {kind} slug (lowercase letters and digits, "
                              "words joined by single dashes, as in the address on kaggle.com)")
    _check_length(slug, SLUG_LENGTHS[kind], what, f"the {kind} slug")
    return slug


def check_owner_slug(ref: str, kind: str, what: str) -> str:
    """'owner/slug' of a kernel or dataset."""
    owner, slash, slug = (ref or "").partition("/")
    if not slash or not OWNER.fullmatch(owner) or "/" in slug:
        raise KaggleNameError(f"{what}: '{ref}' is not a Kaggle owner/slug (your user name, a slash, the {kind}'s "
                              "slug, as in the address on kaggle.com)")
    check_slug(slug, kind, what)
    return ref


def check_kernel_id(ref: str, what: str = "kernel") -> str:
    """A kernel's 'owner/slug' (the slug also makes its title, so it obeys the title's limits too)."""
    return check_owner_slug(ref, "kernel", what)


def check_dataset_id(ref: str, what: str = "dataset") -> str:
    """A dataset's 'owner/slug'."""
    return check_owner_slug(ref, "dataset", what)


def check_competition(slug: str, what: str = "competition") -> str:
    return check_slug(slug, "competition", what)


def check_title(title: str, kind: str = "kernel", what: str = "title", slug: str | None = None) -> str:
    """A kernel's or dataset's title: its length, and (given `slug`) that Kaggle derives that slug from it.

    A kernel whose title gives another slug is created under that other slug: `status` and
    `output` would not find it by its id.
    """
    _check_length(title or "", TITLE_LENGTHS[kind], what, f"the {kind} title")
    if slug is not None and title.isascii() and slug_of_title(title) != slug:  # non-ASCII: transliterated
        raise KaggleNameError(f"{what}: the {kind} title '{title}' gives the slug '{slug_of_title(title)}', not "
                              f"'{slug}'; Kaggle would file it under the other slug")
    return title
