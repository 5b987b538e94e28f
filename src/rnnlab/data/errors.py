"""The one exception type of :mod:`rnnlab.data`.

:class:`DataError` subclasses :class:`ValueError`, so code that already catches
``ValueError`` keeps working; its messages name the file, the argument or the token
at fault and say how to fix the problem (a byte offset for a non-UTF-8 file, the
folders searched for a missing dataset, the expected and the actual hash).
"""

from __future__ import annotations


class DataError(ValueError):
    """A corpus, vocabulary or id file cannot be used as asked (the message says why)."""
