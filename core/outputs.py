"""Output paths checked before any work: a folder to create or fill, a file to write.

The checks create nothing that stays (a probe folder is made and removed at once), so a command
that refuses its output leaves no debris.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def writable_folder(folder: Path) -> bool:
    """Whether a new folder can be made in `folder` (tried, then removed)."""
    return folder.is_dir() and _writable(folder)


@contextmanager
def staged_folder(out_dir: str | Path, *, replaceable: Callable[[Path], bool], what: str = "--out") -> Iterator[Path]:
    """A fresh hidden sibling of `out_dir` to write into, swapped in for `out_dir` when the block
    ends without an error; on any error (a cancel included) it is removed and `out_dir` is untouched.

    An existing `out_dir` is replaced only when it is empty or `replaceable(out_dir)` says it is
    ours (checked again at the swap, not only before the work); otherwise OptionError, and nothing
    is deleted. The old folder is moved aside before the new one takes its place and removed after,
    so a failed swap puts it back. Symbolic links are followed: the folder they name is replaced.
    """
    target = Path(out_dir).expanduser().resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
        # mkdtemp makes it owner-only; the export is a folder like any other (shared storage for training).
        staging.chmod(0o777 & ~_umask())
    except OSError as exc:
        raise OptionError(f"{what} {out_dir}: cannot create it: {exc.strerror or exc}") from None
    try:
        yield staging
        _swap_in(staging, target, replaceable, what)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_in(staging: Path, target: Path, replaceable: Callable[[Path], bool], what: str) -> None:
    try:
        if not target.exists() or (target.is_dir() and not any(target.iterdir())):
            os.replace(staging, target)  # rename(2) replaces an empty folder, and fails on a filled one
            return
        if not target.is_dir() or not replaceable(target):
            raise OptionError(f"{what} {target}: the folder is not empty and may not be replaced; "
                              "nothing in it was changed: choose a new folder")
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.replaced-", dir=target.parent))
        try:
            os.replace(target, old)
        except OSError:
            old.rmdir()
            raise
        try:
            os.replace(staging, target)
        except OSError:
            os.replace(old, target)
            raise
    except OSError as exc:
        raise OptionError(f"{what} {target}: cannot put the new files in place: {exc.strerror or exc}") from None
    shutil.rmtree(old, ignore_errors=True)


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
    return os.access(path, os.W_OK)


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; put it back at once
    os.umask(mask)
    return mask
