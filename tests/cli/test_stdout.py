"""``guarded_stdout``: a failure of standard output is a ``StdoutFailed``; any other ``OSError`` is not."""

from __future__ import annotations

import errno
import io
import os
import sys
from pathlib import Path

import pytest

from portalloc.cli.stdout import StdoutFailed, guarded_stdout


def test_a_closed_pipe_on_stdout_is_stdout_failed_and_other_errors_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader went away: every write is EPIPE
    with open(write_end, "w", encoding="utf-8", closefd=True) as pipe:
        monkeypatch.setattr(sys, "stdout", pipe)
        with guarded_stdout():
            assert sys.stdout is not pipe
            with pytest.raises(FileNotFoundError) as elsewhere:
                (tmp_path / "missing").read_bytes()
            assert not isinstance(elsewhere.value, StdoutFailed)
            print("lost")
            with pytest.raises(StdoutFailed) as failed:
                sys.stdout.flush()
            assert failed.value.errno == errno.EPIPE
        assert sys.stdout is pipe  # restored


def test_a_stdout_without_a_descriptor_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buffer)
    with guarded_stdout():
        assert sys.stdout is buffer
