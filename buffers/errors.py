"""Errors raised by the storage layer.

Tree::

    StorageError
    └── StorageFull   the database or the disk under it has no room left
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error the storage layer raises."""


class StorageFull(StorageError):  # noqa: N818 - names the condition, like the errno it wraps
    """No room left for new rows."""
