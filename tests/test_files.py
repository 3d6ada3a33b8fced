"""Reading only regular files of bounded size: real FIFOs, devices, directories and big files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portalloc.errors import UnsafeFile
from portalloc.files import read_regular_file


def test_reads_a_regular_file_and_its_stat(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(b"{}\n")
    result = read_regular_file(path, "ledger", 100)
    assert result.data == b"{}\n"
    assert result.stat.st_ino == path.stat().st_ino


def test_reads_relative_to_a_directory_descriptor(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        assert read_regular_file("f", "ledger", 10, dir_fd=fd).data == b"x"
    finally:
        os.close(fd)


@pytest.mark.parametrize("limit", [0, 3, 4])
def test_size_limit_is_inclusive(tmp_path: Path, limit: int) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abcd")
    if limit >= 4:
        assert read_regular_file(path, "ledger", limit).data == b"abcd"
    else:
        with pytest.raises(UnsafeFile, match="the limit is"):
            read_regular_file(path, "ledger", limit)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeFile, match=r"is not a regular file \(a FIFO\)"):
        read_regular_file(fifo, "ledger", 100)


@pytest.mark.parametrize(("device", "kind"), [("/dev/zero", "a character device"), ("/dev/null", "a character device")])
def test_devices_are_refused(device: str, kind: str) -> None:
    with pytest.raises(UnsafeFile, match=kind):
        read_regular_file(device, ".env file", 100)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeFile, match="a directory"):
        read_regular_file(tmp_path, "compose file", 100)


def test_a_missing_file_passes_the_os_error_through(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "nope", "ledger", 100)
