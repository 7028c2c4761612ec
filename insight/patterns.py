"""Regular expressions typed by users (search boxes, run/tag filters, deep-link parameters).

Python's `re` backtracks: a pattern such as `(a+)+$`, `(.|.)*X` or `(\\d|\\d)+[a-z]` takes
exponential time on a 30-character name while holding the GIL, which stalls the server for
every user. A guard that recognises such patterns can always be bypassed, so user patterns run
on RE2 (`google-re2`, Google's linear-time engine: no backtracking, so every pattern runs in
time linear in the text) instead. RE2 has no backreferences or lookarounds; such patterns are
refused with the reason. Patterns over `MAX_LENGTH` characters are refused too.

Example:

>>> user_regex("loss|acc", "tag").search("epoch_loss") is not None
True
>>> user_regex("(a+)+$", "tag").search("a" * 50 + "b") is None  # linear time, not 2**50
True
>>> user_regex("(a)\\\\1", "tag")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
insight.errors.UsageError: The tag filter is not a valid regular expression (invalid escape...
"""

from __future__ import annotations

import re
from typing import Protocol

import re2

from insight.errors import UsageError

__all__ = ["user_regex", "Pattern", "MAX_LENGTH"]

MAX_LENGTH = 200
_MAX_MEM = 8 << 20  # bytes RE2 may use for one compiled pattern (its default is 8 MiB too)


class Pattern(Protocol):
    """What `user_regex` returns: RE2's compiled pattern, used like `re.Pattern`."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str, pos: int = ..., endpos: int = ...): ...

    def match(self, text: str, pos: int = ..., endpos: int = ...): ...

    def fullmatch(self, text: str, pos: int = ..., endpos: int = ...): ...


class _Pattern:
    """RE2's pattern, also on text holding lone surrogates (file names that are not UTF-8,
    decoded by `os` with `surrogateescape`), which RE2 cannot encode: those are matched with
    the surrogates replaced."""

    __slots__ = ("_re",)

    def __init__(self, compiled) -> None:
        self._re = compiled

    @property
    def pattern(self) -> str:
        return self._re.pattern

    def _call(self, name: str, text: str, *args):
        try:
            return getattr(self._re, name)(text, *args)
        except UnicodeEncodeError:
            clean = text.encode("utf-8", "replace").decode("utf-8")
            return getattr(self._re, name)(clean, *args)

    def search(self, text: str, *args):
        return self._call("search", text, *args)

    def match(self, text: str, *args):
        return self._call("match", text, *args)

    def fullmatch(self, text: str, *args):
        return self._call("fullmatch", text, *args)

    def __repr__(self) -> str:
        return f"user_regex({self.pattern!r})"


def _options(ignore_case: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    options.max_mem = _MAX_MEM
    options.case_sensitive = not ignore_case
    return options


def user_regex(text: str, what: str, *, flags: int = 0, ignore_case: bool = False) -> Pattern:
    """Compile a user's pattern with RE2, which runs in linear time on any input.

    Args:
        text: the pattern as typed (empty matches everything).
        what: what the pattern filters, for the message (`"tag"`, `"search"`).
        flags: `re.IGNORECASE` is honoured (RE2 has no other `re` flags). Defaults to `0`.
        ignore_case: match regardless of case. Defaults to `False`.

    Returns:
        A compiled pattern with `.search`, `.match` and `.fullmatch` as `re.Pattern` has.

    Raises:
        UsageError: longer than `MAX_LENGTH`, or invalid for RE2 (including backreferences
            and lookarounds, which RE2 does not support).

    Example:

    >>> user_regex("LOSS", "tag", ignore_case=True).search("val_loss") is not None
    True
    """
    text = text or ""
    if len(text) > MAX_LENGTH:
        raise UsageError(f"The {what} filter is longer than {MAX_LENGTH} characters.",
                         "Use a shorter pattern.", f"{what}=<{len(text)} characters>")
    ignore_case = ignore_case or bool(flags & re.IGNORECASE)
    try:
        return _Pattern(re2.compile(text, _options(ignore_case)))
    except UnicodeError:
        raise UsageError(f"The {what} filter holds characters that are not valid text.",
                         "Type the pattern again.", f"{what}={text!r}") from None
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        reason = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        raise UsageError(f"The {what} filter is not a valid regular expression ({reason}).",
                         "Fix the pattern, e.g. `loss|acc`; backreferences (\\1) and "
                         "lookarounds ((?=...)) are not supported.", f"{what}={text!r}") from None
