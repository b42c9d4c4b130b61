"""What a search text asks for, without the database: its words (with Russian word forms) and the
fragment to look for inside names, phone numbers and e-mails.

Everything searched and every query is folded the same way: lower case, ё written е (migration 0013
writes the documents so). A text of digits and phone separators with at least ``MIN_DIGITS`` digits
is a phone fragment («706-76» → 70676) and is looked for in the numbers only; any other text of at
least ``MIN_FRAGMENT`` characters is also looked for as a fragment of names, numbers and e-mails.

Word forms: PostgreSQL stems each word itself (the ``russian`` configuration); SQLite has no stemmer,
so here a word loses its inflectional ending (``strip_ending``). Both match each word as a prefix
(results as you type) and also try the word with or without a fleeting vowel («звонок» / «звонки»,
which the Snowball stemmer leaves apart: звонок → «звонок», звонки → «звонк»).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("client", "contact", "lead", "deal", "task", "message", "letter", "call", "note")
KIND_STEP = 1 << 40  # a document's id: kind code × KIND_STEP + the thing's id (migration 0013)
KIND_CODES = {kind: code for code, kind in enumerate(KINDS, start=1)}
MIN_DIGITS = 4
MIN_FRAGMENT = 3
MAX_QUERY = 200
MAX_WORDS = 8

_PHONE = re.compile(r"[\d\s()+\-.]+")
_WORD = re.compile(r"[^\W_]+")
_CONSONANT = "бвгджзклмнпрстфхцчшщ"
_DROPS_VOWEL = re.compile(rf"(.*[{_CONSONANT}])[ое]([кцлнр])")  # звонок → звонк, отец → отц, ветер → ветр
_LOST_VOWEL = re.compile(rf"(.*[{_CONSONANT}])([кцлнр])")  # звонк → звонок, звонек
_CYRILLIC = re.compile(r"[а-я]+")
# Russian inflectional endings, longest first (not -ов/-ев/-ин: Иванов would become every Иван)
ENDINGS = sorted(("ями", "ами", "иях", "ях", "ах", "ией", "ей", "ой", "ий", "ый", "ая", "яя", "ое", "ее",
                  "ые", "ие", "ого", "его", "ому", "ему", "ыми", "ими", "ым", "им", "ом", "ем", "ью", "ия",
                  "ья", "ам", "ям", "а", "я", "о", "е", "ы", "и", "у", "ю", "ь", "й",
                  # and a few of verbs (long enough not to cut nouns: бюджет, кредит stay whole)
                  "ают", "яют", "ует", "уют", "ает", "яет", "ешь", "ете", "ить", "ать", "ять", "еть"),
                 key=len, reverse=True)


_YO = str.maketrans("ё", "е")
_FLEETING_VOWELS = ("о", "е")


def fold(text: str) -> str:
    return text.lower().translate(_YO)


@dataclass(frozen=True)
class Query:
    text: str  # folded
    words: tuple[str, ...]  # for full-text search (none for a phone fragment)
    fragment: str | None  # looked for inside names, phone digits, e-mails (None: too short)

    @property
    def empty(self) -> bool:
        return not self.words and self.fragment is None


def parse(text: str) -> Query:
    folded = " ".join(fold(text).split())
    digits = re.sub(r"\D", "", folded)
    words = tuple(_WORD.findall(folded))[:MAX_WORDS]
    if _PHONE.fullmatch(folded):  # a phone fragment, or else too short for one: words only
        return Query(folded, (), digits) if len(digits) >= MIN_DIGITS else Query(folded, words, None)
    fragment = folded if len(folded) >= MIN_FRAGMENT else None
    return Query(folded, words, fragment)


def strip_ending(word: str) -> str:
    """The word without its inflectional ending, keeping at least three letters (Russian words only)."""
    if len(word) < 4 or not _CYRILLIC.fullmatch(word):
        return word
    for ending in ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[:-len(ending)]
    return word


def fleeting(stem: str) -> set[str]:
    """The stem with its fleeting vowel dropped or restored (the forms of звонок: звонк-и, звонок)."""
    found = set()
    if len(stem) >= 4 and (m := _DROPS_VOWEL.fullmatch(stem)):
        found.add(m[1] + m[2])
    if len(stem) >= 4 and (m := _LOST_VOWEL.fullmatch(stem)):
        found.update(m[1] + vowel + m[2] for vowel in _FLEETING_VOWELS)
    return found


def alternatives(word: str, *, stem: bool) -> list[str]:
    """The prefixes a word is looked for by; ``stem``: strip the ending here (no stemmer in the database)."""
    stripped = strip_ending(word)
    return sorted({stripped if stem else word} | fleeting(stripped))


def fts5_match(query: Query) -> str | None:
    """An FTS5 MATCH expression: every word, each by any of its prefixes."""
    if not query.words:
        return None
    groups = (" OR ".join(f'"{alt}"*' for alt in alternatives(w, stem=True)) for w in query.words)
    return " AND ".join(f"({g})" for g in groups)


def fts5_fragment(query: Query) -> str | None:
    """An FTS5 trigram MATCH for the fragment (a phrase: the fragment as a substring)."""
    if query.fragment is None:
        return None
    return '"' + query.fragment.replace('"', '""') + '"'


def tsquery(query: Query) -> str | None:
    """A ``to_tsquery('russian', …)`` text: every word, each by any of its forms as a prefix."""
    if not query.words:
        return None
    groups = (" | ".join(f"{alt}:*" for alt in alternatives(w, stem=False)) for w in query.words)
    return " & ".join(f"({g})" for g in groups)


def like_fragment(query: Query) -> str | None:
    """An ``ILIKE`` pattern (escape ``\\``) for the fragment anywhere."""
    if query.fragment is None:
        return None
    escaped = query.fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def id_range(kind: str) -> tuple[int, int]:
    start = KIND_CODES[kind] * KIND_STEP
    return start, start + KIND_STEP - 1
