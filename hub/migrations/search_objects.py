"""The search's dialect-specific objects (migration 0013), which the models do not declare: SQLite's
FTS5 tables (and their shadow tables) and PostgreSQL's GIN indexes. Autogenerate and the schema
test leave them out of the comparison with the models."""

from __future__ import annotations

import re

_NAMES = re.compile(r"(search_words|search_grams)(_\w+)?|ix_search_(words|grams)(_\w+)?")


def search_index_object(name: str | None) -> bool:
    return bool(name) and _NAMES.fullmatch(str(name)) is not None
