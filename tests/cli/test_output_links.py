"""Files a command writes are the files named: a symbolic link is refused, never written through.

A repository can commit ``app.env -> /etc/passwd``; ``dotenv`` run there as root once
rewrote the link's target. These use a "passwd" in ``tmp_path``, never the real one.
(``history --png`` has its own row in ``tests/integrations/test_history.py``: it needs git.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import assert_one_error_line
from tests.conftest import RunCli

VICTIM = b"root:x:0:0:root:/root:/bin/bash\n"


@pytest.fixture
def link_to_victim(tmp_path: Path) -> tuple[Path, Path]:
    """``tmp_path/etc/passwd`` (the victim) and ``tmp_path/app.env`` linking to it."""
    (tmp_path / "etc").mkdir()
    victim = tmp_path / "etc" / "passwd"
    victim.write_bytes(VICTIM)
    link = tmp_path / "app.env"
    link.symlink_to(victim)
    return link, victim


@pytest.mark.usefixtures("new_ledger")
@pytest.mark.parametrize("writer", ["dotenv", "export"])
def test_a_link_to_another_file_is_refused(
    run_cli: RunCli, link_to_victim: tuple[Path, Path], ledger_path: Path, writer: str
) -> None:
    link, victim = link_to_victim
    ledger_before = ledger_path.read_bytes()
    args = ("dotenv", "model_a", "1", str(link)) if writer == "dotenv" else ("export", "-o", str(link))
    result = run_cli(*args)
    assert result.exit_code == 1, result.output
    assert_one_error_line(result.stderr)
    assert "symbolic link" in result.stderr and str(victim) in result.stderr
    assert "--follow-symlinks" in result.stderr
    assert victim.read_bytes() == VICTIM
    assert link.is_symlink() and link.readlink() == victim
    assert ledger_path.read_bytes() == ledger_before  # dotenv refused before it allocated


@pytest.mark.usefixtures("new_ledger")
@pytest.mark.parametrize("follow", [False, True])
@pytest.mark.parametrize("writer", ["dotenv", "export"])
def test_a_dangling_link_never_creates_its_target(run_cli: RunCli, tmp_path: Path, writer: str, follow: bool) -> None:
    target = tmp_path / "elsewhere" / "created.env"
    target.parent.mkdir()
    link = tmp_path / "app.env"
    link.symlink_to(target)
    args = ["dotenv", "model_a", "1", str(link)] if writer == "dotenv" else ["export", "-o", str(link)]
    result = run_cli(*args, *(["--follow-symlinks"] if follow else []))
    assert result.exit_code == 1, result.output
    assert_one_error_line(result.stderr)
    assert "symbolic link" in result.stderr
    assert not target.exists()
    assert link.is_symlink()


@pytest.mark.usefixtures("new_ledger")
def test_follow_symlinks_writes_the_target_and_keeps_the_link(
    run_cli: RunCli, link_to_victim: tuple[Path, Path]
) -> None:
    link, target = link_to_victim
    target.write_bytes(b"A=1\n")
    result = run_cli("dotenv", "model_a", "1", str(link), "--follow-symlinks")
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and link.readlink() == target
    text = target.read_text()
    assert "BACKEND_PORT=5001" in text and text.endswith("A=1\n")

    exported = run_cli("export", "-o", str(link), "--follow-symlinks")
    assert exported.exit_code == 0, exported.output
    assert link.is_symlink() and target.read_text().startswith("[")


@pytest.mark.usefixtures("new_ledger")
def test_a_link_in_the_directory_path_is_still_followed(run_cli: RunCli, tmp_path: Path) -> None:
    """Only the file itself must not be a link: ``apps -> /srv/apps`` is an ordinary layout."""
    (tmp_path / "real").mkdir()
    (tmp_path / "apps").symlink_to(tmp_path / "real")
    result = run_cli("dotenv", "model_a", "1", str(tmp_path / "apps" / ".env"))
    assert result.exit_code == 0, result.output
    assert "BACKEND_PORT=5001" in (tmp_path / "real" / ".env").read_text()
