"""Name keys for finding a person however their name was spelt.

Two keys are kept for each member:

* `search_name`: the names in plain lower-case ASCII (transliterated, accents
  dropped), for similarity ranking (pg_trgm on PostgreSQL).
* `name_keys`: one sound key per name word, for finding candidates with an
  index. Spellings that sound alike get the same key: Mwansa/Mwanza,
  Muhammad/Mohammed/Mohamad, Chileshe/Chireshe (Bemba l/r), Phiri/Firi.

The sound key is ours, built for the names of the regions we serve, not
Soundex (which keeps vowels' positions and splits Muhammad from Mohammed less
reliably) and not Metaphone (English rules that mishandle Bantu names).
"""

import re
from difflib import SequenceMatcher

from unidecode import unidecode

_WORD = re.compile(r"[a-z]+")
# Applied in order after x and hard c are rewritten; upper-case letters stand
# for sounds written with two letters (C for ch, S for sh).
_DIGRAPHS = (
    ("sch", "S"),
    ("tch", "C"),
    ("ch", "C"),
    ("sh", "S"),
    ("ph", "f"),
    ("th", "t"),
    ("dh", "d"),
    ("kh", "k"),
    ("gh", "g"),
    ("ck", "k"),
)
_SOFT_C = re.compile(r"c(?=[eiy])")
_HARD_C = re.compile(r"c(?!h)")
_LETTER_MAP = str.maketrans({"q": "k", "z": "s", "r": "l", "v": "b", "j": "y"})
# Vowels and the glides w and y carry little of a name's identity across spellings.
_VOWELS = set("aeiouwy")


def plain(text: str) -> str:
    """Lower-case ASCII words separated by single spaces."""
    return " ".join(_WORD.findall(unidecode(text or "").lower()))


def sound_key(word: str) -> str:
    """The sound key of one name word ('' for an empty word)."""
    word = plain(word).replace(" ", "")
    if not word:
        return ""
    rewritten = word.replace("x", "ks")
    rewritten = _HARD_C.sub("k", _SOFT_C.sub("s", rewritten))
    for old, new in _DIGRAPHS:
        rewritten = rewritten.replace(old, new)
    rewritten = rewritten.translate(_LETTER_MAP).rstrip("h") or rewritten
    first = rewritten[0]
    head = "a" if first in "aeiou" else first
    body = [letter for letter in rewritten[1:] if letter not in _VOWELS]
    key = head
    for letter in body:
        if letter != key[-1]:
            key += letter
    return key


def name_words(*names: str) -> list[str]:
    words: list[str] = []
    for name in names:
        for part in re.split(r"[,;/]", name or ""):
            words.extend(plain(part).split())
    return words


def name_keys(*names: str) -> list[str]:
    """Distinct sound keys of every word of the given names, in order."""
    keys: list[str] = []
    for word in name_words(*names):
        key = sound_key(word)
        if key and key not in keys:
            keys.append(key)
    return keys


def name_keys_text(*names: str) -> str:
    """The keys as stored: space-separated with a leading and trailing space, so ' key ' matches a whole key."""
    keys = name_keys(*names)
    return f" {' '.join(keys)} " if keys else ""


def name_similarity(left: str, right: str) -> float:
    """0..1: how alike two full names are, order of words ignored, sounds considered."""
    left_words, right_words = name_words(left), name_words(right)
    if not left_words or not right_words:
        return 0.0
    left_keys, right_keys = {sound_key(w) for w in left_words}, {sound_key(w) for w in right_words}
    sound = len(left_keys & right_keys) / max(len(left_keys), len(right_keys))
    spelling = SequenceMatcher(None, " ".join(sorted(left_words)), " ".join(sorted(right_words))).ratio()
    return round(max(sound * 0.9 + spelling * 0.1, spelling), 3)
