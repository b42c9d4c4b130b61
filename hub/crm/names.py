"""Names as duplicates are compared (``Client.name_key``)."""

from __future__ import annotations

import re

_QUOTES = re.compile(r"[\"'«»“”„‟`´]")
_LEGAL_FORMS = re.compile(
    r"\b(ооо|оао|зао|пао|нао|ао|ип|тоо|нко|ано|гуп|муп|фгуп|ooo|llc|ltd|inc)\b", re.IGNORECASE)
_SPACES = re.compile(r"[\s.,\-–—]+")
_YO = str.maketrans("ё", "е")


def name_key(name: str) -> str:
    """A name as duplicates are compared: lower case, ё = е, no quotes or legal form (ООО, ИП, АО…),
    single spaces. «ООО "Северный Ветёр"» and «Северный ветер» give the same key."""
    text = name.lower().translate(_YO)
    text = _QUOTES.sub(" ", text)
    text = _LEGAL_FORMS.sub(" ", text)
    return _SPACES.sub(" ", text).strip()[:300]
