"""Ranking layers against a search query, shared by the palette and the quick-add popup.

A layer whose type name is the query comes first, then names that start with it, then names
that contain it, then layers whose description (family and summary) holds every word of it.
"""

from __future__ import annotations

EXACT, PREFIX, SUBSTRING, DESCRIPTION = range(4)


def match_rank(query: str, name: str, description: str) -> int | None:
    """How well ``query`` matches a layer (lower is better); None when it does not match.
    An empty query matches every layer equally (as a name prefix)."""
    words = query.lower().split()
    wanted, type_name = " ".join(words), name.lower()
    if type_name == wanted:
        return EXACT
    if type_name.startswith(wanted):
        return PREFIX
    if wanted in type_name:
        return SUBSTRING
    text = f"{type_name} {description.lower()}"
    return DESCRIPTION if all(word in text for word in words) else None


def search_key(query: str, name: str, description: str) -> tuple[int, str] | None:
    """A sort key for ``name`` (rank, then the name alphabetically), or None when it does not match."""
    rank = match_rank(query, name, description)
    return None if rank is None else (rank, name.lower())
