"""One watchlist and the posts that try its rules: what each post must match, and why.

The matcher's unit tests and the pipeline test (real broker and PostgreSQL) both use it, so
the stream stores exactly what the matcher decides.
"""

from __future__ import annotations

from watchlist.rules import WatchEntity

ENTITIES = (
    WatchEntity(name="apple", keywords=["Apple"]),
    WatchEntity(name="apple-music", keywords=["apple music"]),
    WatchEntity(name="cafe-flore", keywords=["Café de Flore"]),
    WatchEntity(name="acme", hashtags=["#AcmeCorp"], mentions=["@acme_help"]),
    WatchEntity(name="strasse", keywords=["Hauptstraße"]),
    WatchEntity(name="nyc", regexes=[r"\bn(ew )?y(ork )?c(ity)?\b"]),
    WatchEntity(name="cplusplus", keywords=["C++"]),
)

# (post text, the entities it names, what it shows)
CASES = (
    ("Apple's new phone is out", ("apple",), "a possessive ends the word"),
    ("I love pineapple", (), "no match inside a longer word"),
    ("apples and pears", (), "a plural is another word"),
    ("APPLE!!!", ("apple",), "case does not matter"),
    ("🍎Apple🍎 event", ("apple",), "emoji next to a word are not letters"),
    ("check #apple today", ("apple",), "a keyword also matches as a hashtag"),
    ("Apple Music is down again", ("apple", "apple-music"), "overlapping entities both match"),
    ("apple\n  music playlists", ("apple", "apple-music"), "any whitespace between words"),
    ("apple_music", (), "_ joins words, as in a handle"),
    ("lunch at cafe de flore", ("cafe-flore",), "accents do not matter (rule side)"),
    ("Ça va? Apple café", ("apple",), "accents do not matter (post side)"),
    ("Hauptstrasse closed", ("strasse",), "ß folds to ss"),
    ("Love #acmecorp and #AcmeCorpSupport", ("acme",), "a hashtag matches as a whole tag"),
    ("#AcmeCorpSupport only", (), "a longer hashtag is another tag"),
    ("acmecorp without the hash", (), "a hashtag rule needs the #"),
    ("thanks @ACME_HELP!", ("acme",), "mentions ignore case"),
    ("mail me@acme_help.com", (), "an address is not a mention"),
    ("moving to New York City", ("nyc",), "a regex rule"),
    ("NYC!", ("nyc",), "a regex sees the normalised text, case-insensitively"),
    ("I code in C++ daily", ("cplusplus",), "a rule that ends in punctuation"),
    ("abc++ is not it", (), "a rule that starts with a letter needs a boundary before it"),
)
