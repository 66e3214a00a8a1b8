"""Atomic writes of folders and files: build in a temporary sibling, then rename over the target."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

TMP_MARK = ".tmp-"


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `target`; on success it replaces `target`.

    On any error (or interruption) the temporary folder is removed and an existing `target` is
    left as it was. Temporaries a killed process left behind are cleaned on the next write.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}{TMP_MARK}", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; artifacts are meant to be shared
    try:
        yield tmp
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write a file through a temporary sibling and a rename, so readers see the old or the new text."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TMP_MARK}file")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def _swap_in(new: Path, target: Path) -> None:
    """Rename `new` to `target`; an old `target` is removed only after the swap succeeded."""
    if not target.exists():
        os.rename(new, target)
        return
    old = target.with_name(f".{target.name}{TMP_MARK}old")
    if old.exists():
        shutil.rmtree(old)
    os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)


def _remove_stale(target: Path) -> None:
    old = target.with_name(f".{target.name}{TMP_MARK}old")
    if old.exists() and not target.exists():
        os.rename(old, target)  # killed between the two renames: restore the previous folder
    for stale in target.parent.glob(f".{target.name}{TMP_MARK}*"):
        shutil.rmtree(stale, ignore_errors=True)
