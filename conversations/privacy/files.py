"""Deleting customers' files from the storage (erasure and retention)."""

import logging

from django.core.files.storage import default_storage

logger = logging.getLogger(__name__)


def delete_files(names: list[str]) -> int:
    """Delete the stored files; returns how many went (a missing one counts: it is gone).

    A storage error is logged (by file count, not name) and re-raised, so the caller changes no
    row and a later run tries again.
    """
    for name in names:
        try:
            default_storage.delete(name)
        except OSError as exc:
            logger.warning("could not delete a stored media file: %s", type(exc).__name__)
            raise
    return len(names)
