"""The uploads folder: files wait there between an import's preview and its run."""
from __future__ import annotations

import time
from pathlib import Path


def forget_old_uploads(folder: str | Path, max_age_seconds: float, *, keep: set[str] = frozenset(),
                       now: float | None = None) -> int:
    """Delete the files in an uploads folder older than `max_age_seconds`, except those in `keep`
    (paths of uploads an import still needs); return how many went."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    cutoff = (now if now is not None else time.time()) - max_age_seconds
    removed = 0
    for path in folder.iterdir():
        if path.is_file() and str(path) not in keep and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
