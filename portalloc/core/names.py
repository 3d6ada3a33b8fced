"""What a model name must be when it first enters the ledger, beyond what any stored name must be.

``keys.check_model_name`` decides what every name may be, on every read and lookup,
and gives the same answer on every supported Python. Two rules hold only at the moment
a model is new to the ledger, because their answer depends on data that changes:

- every code point must be assigned in this Python's Unicode database (a ledger that a
  newer Python wrote, with a code point this one does not know, must still load here);
- the name must not look like a model the ledger already has: ``model_a`` and
  ``model_а`` (Cyrillic a), ``mοdel_a`` (Greek omicron), ``ﬁle`` and ``file``,
  ``model‐a`` (U+2010) and ``model-a``, ``ｍodel_a`` (fullwidth m) would be separate
  keys that print the same. Two names look alike when their skeletons are equal: the
  skeleton of Unicode TR39 (section 4), taken after NFKC so that compatibility forms
  fold too. The data is Unicode's ``confusables.txt`` (UTS #39, version 13.0.0),
  vendored beside this module with its header; it is read on the first new model of a
  process, never on a lookup.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from portalloc.errors import ConfusableName, InvalidKey

if TYPE_CHECKING:
    from portalloc.core.shapes import LedgerShape

#: Unicode's confusables.txt (UTS #39), trimmed to ``source;prototype`` lines; its header says which version.
_DATA = Path(__file__).with_name("confusables.txt")


@cache
def _prototypes() -> dict[str, str]:
    """``confusables.txt`` as ``{character: prototype}`` (lines ``source;prototype``, hex code points)."""
    mapping: dict[str, str] = {}
    for line in _DATA.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        source, _, prototype = line.partition(";")
        mapping[chr(int(source, 16))] = "".join(chr(int(point, 16)) for point in prototype.split())
    return mapping


@cache
def skeleton(name: str) -> str:
    """TR39's ``skeleton(name)`` after NFKC: NFD, each character replaced by its prototype, NFD again.

    Equal skeletons mean the two names can be mistaken for each other on screen.
    """
    prototypes = _prototypes()
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", name))
    return unicodedata.normalize("NFD", "".join(prototypes.get(char, char) for char in decomposed))


def look_alike(name: str, models: Iterable[str]) -> str | None:
    """The first of ``models`` (other than ``name`` itself) that looks like ``name``, or ``None``."""
    wanted = skeleton(name)
    return next((model for model in models if model != name and skeleton(model) == wanted), None)


def check_new_model(name: str, models: Iterable[str], *, allow_confusable: bool = False) -> None:
    """Raise if ``name`` (valid, in NFC, not yet in the ledger) may not become a model of it.

    ``InvalidKey`` for a code point this Python's Unicode does not assign, and
    ``ConfusableName`` when it looks like one of ``models`` (the ledger's models), unless
    ``allow_confusable`` says the user means a second model.
    """
    for char in name:
        if unicodedata.category(char) == "Cn":
            raise InvalidKey(
                f"model {name!r} contains U+{ord(char):04X}, which this Python's Unicode "
                f"({unicodedata.unidata_version}) does not assign; a new model name must be known here"
            )
    if allow_confusable:
        return
    existing = look_alike(name, models)
    if existing is not None:
        raise ConfusableName(
            f"model {name!r} looks the same as the existing model {existing!r} "
            f"({_difference(name, existing)}); use {existing!r}, or allow a look-alike with "
            "portalloc --allow-confusable (allow_confusable=True in the API)"
        )


def _difference(name: str, existing: str) -> str:
    """The first characters that differ, named: ``U+0430 CYRILLIC SMALL LETTER A for U+0061 …``."""
    for ours, theirs in zip(name, existing, strict=False):  # the first difference, if any
        if ours != theirs:
            return f"{_named(ours)} where it has {_named(theirs)}"
    return "the same letters, spelled differently"


def _named(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, 'UNNAMED')}"


class KnownModels:
    """The models a ledger has, and the door a new one comes in by (``check_new_model``).

    The set is gathered on the first ``admit`` (a batch of existing keys never pays for
    it); models admitted since count as known, so two look-alikes in one batch are caught.
    A pool names its model before the model has apps: that name is known too.
    """

    def __init__(self, ledger: LedgerShape, *, allow_confusable: bool = False) -> None:
        self._ledger = ledger
        self._allow_confusable = allow_confusable
        self._models: set[str] | None = None

    def admit(self, model: str) -> None:
        """Return if ``model`` is known or may enter (it is then known); raise as ``check_new_model`` does."""
        if self._models is None:
            ledger = self._ledger
            self._models = {*ledger.model_names, *(pool.model for pool in ledger.policy.pools)}
        if model in self._models:
            return
        check_new_model(model, sorted(self._models), allow_confusable=self._allow_confusable)
        self._models.add(model)
