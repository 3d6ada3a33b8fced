"""Reading only regular files of bounded size: real FIFOs, devices, directories and big files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from portalloc.errors import UnsafeFile
from portalloc.storage.files import FileDirectory, atomic_write, output_target, read_regular_file, remove_stale_temps


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


# --- writing ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_write_refuses_to_replace_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    special = tmp_path / "special"
    if kind == "fifo":
        os.mkfifo(special)
    else:
        if os.geteuid() != 0:
            pytest.skip("mknod of a device needs root")
        os.mknod(special, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    link = tmp_path / ".env"
    link.symlink_to(special)
    with pytest.raises(UnsafeFile, match="is a symbolic link"):
        atomic_write(link, b"BACKEND_PORT=5001\n")
    with pytest.raises(UnsafeFile, match="is not a regular file"):  # followed on purpose: still not a file
        atomic_write(link, b"BACKEND_PORT=5001\n", follow_symlinks=True)
    assert not stat.S_ISREG(special.lstat().st_mode)  # still the FIFO / device, not "rewritten" into a file
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env", "special"]  # no temp file left


def test_write_refuses_a_link_and_never_creates_a_dangling_links_target(tmp_path: Path) -> None:
    victim, link, dangling = tmp_path / "victim", tmp_path / "out", tmp_path / "dangling"
    victim.write_bytes(b"keep\n")
    link.symlink_to(victim)
    dangling.symlink_to(tmp_path / "created")
    for path in (link, dangling):
        with pytest.raises(UnsafeFile, match="is a symbolic link"):
            atomic_write(path, b"x\n")
    with pytest.raises(UnsafeFile, match="which does not exist"):
        atomic_write(dangling, b"x\n", follow_symlinks=True)
    assert victim.read_bytes() == b"keep\n" and not (tmp_path / "created").exists()
    atomic_write(link, b"new\n", follow_symlinks=True)
    assert link.is_symlink() and victim.read_bytes() == b"new\n"
    assert output_target(tmp_path / "plain") == tmp_path / "plain"


def test_a_link_swapped_in_after_the_check_is_refused_not_followed(tmp_path: Path) -> None:
    """``output_target`` checked a plain name; the writer must still not write through a link put there since."""
    victim, name = tmp_path / "victim", tmp_path / "out"
    victim.write_bytes(b"keep\n")
    name.write_bytes(b"mine\n")
    with FileDirectory(name, follow_symlinks=False) as directory:
        name.unlink()
        name.symlink_to(victim)
        with pytest.raises(UnsafeFile, match=r"not a regular file \(a symbolic link\)"):
            directory.write(b"x\n", like=directory.lstat())
    assert victim.read_bytes() == b"keep\n" and name.is_symlink()


def test_write_keeps_the_mode_and_sweeps_only_dead_writers_temps(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "out.env"
    path.write_bytes(b"old\n")
    path.chmod(0o640)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, live = f".out.env.{dead.pid}.0badf00d.tmp", f".out.env.{os.getpid()}.0badf00d.tmp"
    hostile = ".out.env.99999999999999999999.a.tmp"
    for name in (stale, live, hostile):
        (tmp_path / name).write_bytes(b"x")
    atomic_write(path, b"new\n")
    assert (path.read_bytes(), stat.S_IMODE(path.stat().st_mode)) == (b"new\n", 0o640)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([hostile, live, "out.env"])
    with FileDirectory(path) as directory:
        assert remove_stale_temps(directory) == 0


def test_exclusive_write_never_replaces(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"theirs")
    with FileDirectory(path) as directory, pytest.raises(FileExistsError):
        directory.write(b"ours", like=None, exclusive=True)
    assert path.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
