"""App directories and their pairs: create a directory then allocate, release pairs whose directory is gone."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from portalloc.core import allocator
from portalloc.core.keys import app_dir, check_key, check_model_name, names_by_nfc
from portalloc.core.models import Allocation, Ledger, PortPair
from portalloc.errors import AppDirUnavailable, AppsDirLooksWrong, AppsDirMissing
from portalloc.service.allocation import Allocations


class AppDirectories:
    """``<apps_dir>/<model>/app<N>`` beside the ledger's allocations (through ``allocations``' write path)."""

    def __init__(self, allocations: Allocations) -> None:
        self.allocations = allocations

    def allocate_app_dir(self, apps_dir: str | Path, model_name: str, app_num: int) -> tuple[PortPair, Path]:
        """Create the app's directory, then get or allocate its pair (see ``PortAllocationService``)."""
        model_name, app_num = check_key(model_name, app_num)
        target = app_dir(_apps_root(apps_dir), model_name, app_num)
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise AppDirUnavailable(f"cannot create the app directory {target}: {error.strerror or error}") from None
        existing = self.allocations.target.file.read().find(model_name, app_num)
        if existing is not None:
            return existing, target
        return self.allocations.allocate_many([(model_name, app_num)])[0], target

    def cleanup_orphaned_allocations(
        self, apps_dir: str | Path, model_name: str | None, *, dry_run: bool, allow_all: bool
    ) -> list[PortPair]:
        """Release allocations whose app directory no longer exists (see ``PortAllocationService``)."""
        root = _apps_root(apps_dir)
        wanted = check_model_name(model_name) if model_name is not None else None

        def orphans(ledger: Ledger) -> list[Allocation]:
            spelled = _nfd_model_dirs(root)
            gone = [a for a in ledger.allocations if _is_gone(_app_dir_on_disk(root, spelled, a))]
            doomed = [a for a in gone if wanted is None or a.model == wanted]
            if doomed and len(gone) == len(ledger.allocations) and not allow_all:
                raise AppsDirLooksWrong(
                    f"no app in the ledger has a directory under {root} (all {len(gone)} are missing); "
                    "check the apps directory, or say that every app is gone (--all-gone)"
                )
            return doomed

        file = self.allocations.target.file
        if dry_run:
            return orphans(file.read())
        return self.allocations.released(
            lambda ledger: allocator.release_many(ledger, [a.key for a in orphans(ledger)])
        )


def _apps_root(apps_dir: str | Path) -> Path:
    root = Path(apps_dir)
    if not root.is_dir():
        raise AppsDirMissing(f"apps directory {root} does not exist or is not a directory")
    return root


def _nfd_model_dirs(root: Path) -> dict[str, str]:
    """The model directories under ``root`` whose names are not in NFC, by their NFC names (``keys.names_by_nfc``)."""
    try:
        return names_by_nfc(entry.name for entry in os.scandir(root))
    except OSError:  # unreadable: each app's own stat says what it can (an unsure one is kept)
        return {}


def _app_dir_on_disk(root: Path, spelled: Mapping[str, str], allocation: Allocation) -> Path:
    """``keys.app_dir`` of the allocation, with its model directory as spelled on disk if that is not NFC."""
    model_dir = app_dir(root, allocation.model, allocation.app_num).parent
    if model_dir.name in spelled and not model_dir.exists():
        model_dir = root / spelled[model_dir.name]
    return model_dir / f"app{allocation.app_num}"


def _is_gone(directory: Path) -> bool:
    """``True`` when the OS says ``directory`` does not exist (or is not a directory); ``False`` if unsure."""
    try:
        return not stat.S_ISDIR(os.stat(directory).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:  # EACCES, ENAMETOOLONG, EIO…: not proof that the app is gone
        return False
