"""The source distribution, built for real and unpacked: its metadata, and its own tests passing from it.

An sdist is what a packager (a distribution, a company mirror) builds and tests from,
so it carries the tests with their conftest, fixtures and the documents and examples
they execute; developers' tools are dependency groups, not extras a user could install.
"""

from __future__ import annotations

import email.parser
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import subprocess_env

ROOT = Path(__file__).parents[1]
#: A few of the sdist's own test files, run from the unpacked tree (pure, CLI, the compose judge).
SAMPLE = ["tests/core/test_keys.py", "tests/integrations/test_composefiles.py", "tests/cli/test_init.py"]


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("build", reason="the build package is not installed (pip install --group test)")
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(out / "dist"), str(ROOT)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (sdist,) = (out / "dist").glob("portalloc-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(out / "unpacked", filter="data")
    (root,) = (out / "unpacked").iterdir()
    return root


@pytest.mark.slow
def test_the_sdist_holds_what_its_tests_read(unpacked: Path) -> None:
    names = {path.relative_to(unpacked).as_posix() for path in unpacked.rglob("*")}
    needed = {
        "LICENSE",
        "CHANGELOG.md",
        "README.md",
        ".pre-commit-hooks.yaml",
        "tests/conftest.py",
        "tests/compose_judge.py",
        "tests/compose_fixtures/kafka.yaml",
        "misc/port_config.json",
        "examples/direnv/.envrc",
    }
    assert needed <= names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


@pytest.mark.slow
def test_the_sdist_metadata_names_the_license_and_publishes_no_developer_extras(unpacked: Path) -> None:
    info = email.parser.Parser().parsestr((unpacked / "PKG-INFO").read_text(encoding="utf-8"))
    assert info["License-Expression"] == "Apache-2.0"
    assert info.get_all("License-File") == ["LICENSE"]
    assert info["Author"] == "The portalloc authors"
    assert info.get_all("Project-URL") is None  # none until the project has a public home (pyproject.toml)
    assert "Programming Language :: Python :: 3" in (info.get_all("Classifier") or [])
    assert sorted(info.get_all("Provides-Extra") or []) == ["plot", "serve"]


@pytest.mark.slow
def test_the_unpacked_sdist_passes_its_own_tests(unpacked: Path) -> None:
    # The unpacked tree's portalloc, not this checkout's: the tests import from their rootdir.
    where = subprocess.run(
        [sys.executable, "-c", "import portalloc, tests.conftest; print(portalloc.__file__)"],
        cwd=unpacked, capture_output=True, text=True, check=True, env=subprocess_env(PYTHONPATH=str(unpacked)),
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(unpacked)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SAMPLE],
        cwd=unpacked, capture_output=True, text=True, timeout=600, env=subprocess_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert " passed" in last and "error" not in last and "skipped" not in last, last
