"""Regular expressions typed by users (search boxes, run/tag filters, deep-link parameters).

Python's `re` has no time limit, so a pattern with a quantified group that itself repeats,
such as `(a+)+$`, can take exponential time on a 30-character name and stall the server for
every user. Such patterns are refused, and so is any pattern over `MAX_LENGTH` characters.

Example:

>>> user_regex("loss|acc", "tag").search("epoch_loss") is not None
True
>>> user_regex("(a+)+$", "tag")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
insight.errors.UsageError: The tag filter repeats a group that itself repeats...
"""

from __future__ import annotations

import re

from insight.errors import UsageError

__all__ = ["user_regex", "MAX_LENGTH"]

MAX_LENGTH = 200
# A group holding a `+`, `*` or `{n,}` quantifier, itself followed by a quantifier.
_NESTED = re.compile(r"\((?:[^()\\]|\\.)*(?:[+*]|\{\d*,\d*\})(?:[^()\\]|\\.)*\)\s*(?:[+*]|\{)")


def user_regex(text: str, what: str, *, flags: int = 0) -> re.Pattern:
    """Compile a user's pattern, refusing ones that could run for minutes.

    Raises:
        UsageError: invalid, too long, or a nested repetition.
    """
    text = text or ""
    if len(text) > MAX_LENGTH:
        raise UsageError(f"The {what} filter is longer than {MAX_LENGTH} characters.",
                         "Use a shorter pattern.", f"{what}=<{len(text)} characters>")
    if _NESTED.search(text):
        raise UsageError(f"The {what} filter repeats a group that itself repeats, which can "
                         "take exponential time.", "Drop the inner or the outer repetition, "
                         "e.g. `(a+)+` -> `a+`.", f"{what}={text!r}")
    try:
        return re.compile(text, flags)
    except re.error as exc:
        raise UsageError(f"The {what} filter is not a valid regular expression ({exc}).",
                         "Fix the pattern, e.g. `loss|acc`.", f"{what}={text!r}") from None
