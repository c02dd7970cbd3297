"""Output paths checked before any work: a folder to create or fill, a file to write.

The checks create nothing that stays (a probe folder is made and removed at once), so a command
that refuses its output leaves no debris.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from core.errors import OptionError


def check_output_folder(
    out_dir: str | Path, *, what: str = "--out", allow_existing: bool = False, force_option: str | None = None,
) -> Path:
    """The folder a merge or export will create: it must not hold files yet (unless
    `allow_existing`, which `force_option` turns on) and must be creatable. Raises OptionError;
    creates nothing."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise OptionError(f"{what} {out}: is a file, not a folder")
    if out.is_dir() and not allow_existing and any(out.iterdir()):
        hint = f", or pass {force_option} to write into it" if force_option else ""
        raise OptionError(f"{what} {out}: the folder is not empty; choose a new folder{hint}")
    parent = _existing_parent(out.resolve())
    if not parent.is_dir() or not _writable(parent):
        raise OptionError(f"{what} {out}: cannot create it ({parent} is not a writable folder)")
    return out


def _existing_parent(path: Path) -> Path:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _writable(folder: Path) -> bool:
    """Whether a folder can be created in `folder`: tried, then removed (permission bits say
    yes for root in /proc, which refuses new entries all the same)."""
    try:
        Path(tempfile.mkdtemp(prefix=".workbench-probe-", dir=folder)).rmdir()
    except OSError:
        return False
    return True


def check_output_file(path: str | Path, *, what: str, suffixes: tuple[str, ...] = ()) -> Path:
    """A file about to be written: the right suffix, not a folder, in an existing writable folder.

    Raises OptionError; creates nothing.
    """
    target = Path(path).expanduser()
    if suffixes and target.suffix not in suffixes:
        raise OptionError(f"{what} {target}: use a {' or '.join(suffixes)} file name")
    if target.is_dir():
        raise OptionError(f"{what} {target}: is a folder; give a file name")
    parent = target.resolve().parent
    if not parent.is_dir():
        raise OptionError(f"{what} {target}: folder {parent} does not exist")
    if not _writable(parent) or (target.exists() and not _file_writable(target)):
        raise OptionError(f"{what} {target}: cannot write there ({parent} is not writable)")
    return target


def _file_writable(path: Path) -> bool:
    import os

    return os.access(path, os.W_OK)
