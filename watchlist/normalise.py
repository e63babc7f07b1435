"""The one text normalisation that rules and posts both go through before matching.

Case-folded (``Straße`` -> ``strasse``), compatibility-decomposed with the combining marks
dropped (``Café`` -> ``cafe``, full-width letters -> ASCII), whitespace runs collapsed to one
space. A rule and a post that differ only in case, accents or spacing normalise to the same text.
"""

from __future__ import annotations

import unicodedata

# Every combining mark (accents, diacritics) maps to nothing: str.translate drops them in C.
# They all lie in the first three planes and the variation-selector block of plane 14.
_DROP_MARKS = {
    code: None
    for code in (*range(0x30000), *range(0xE0000, 0xE1000))
    if unicodedata.combining(chr(code))
}


def normalise(text: str) -> str:
    """``text`` case-folded, without accents, with single spaces (see the module docstring)."""
    if text.isascii():  # most posts: lower() is casefold() for ASCII, and there is no accent
        folded = text.lower()
    else:
        # casefold before NFKD: casefold can produce a decomposable letter ("İ" -> "i̇").
        folded = unicodedata.normalize("NFKD", text.casefold()).translate(_DROP_MARKS)
    return " ".join(folded.split())


def is_word_char(char: str) -> bool:
    """Letters, digits and ``_`` (regular expressions' ``\\w``): what word boundaries separate."""
    return char.isalnum() or char == "_"
