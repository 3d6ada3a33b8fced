"""A ledger's identity, worked out from git's files, agrees with ``git rev-parse`` (real repositories)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from portalloc.machine.identity import ID_FILE, identify
from tests.gittools import git, git_env, new_repo


def rev_parse(cwd: Path, env: dict[str, str] | None = None) -> tuple[Path, Path]:
    """``(common dir, top)`` as git itself names them."""
    common, top = git(cwd, "rev-parse", "--path-format=absolute", "--git-common-dir", "--show-toplevel", env=env).split(
        "\n"
    )
    return Path(os.path.realpath(common)), Path(os.path.realpath(top))


def test_linked_worktrees_share_the_repository_and_the_path_in_it(tmp_path: Path) -> None:
    main = new_repo(tmp_path / "main")
    git(main, "worktree", "add", "-q", str(tmp_path / "wt1"), "-b", "one")
    git(main, "worktree", "add", "-q", str(tmp_path / "wt2"), "-b", "two")
    for tree in (main, tmp_path / "wt1", tmp_path / "wt2"):
        (tree / "infra").mkdir()
    identities = [identify(tree / "infra" / "portalloc.json") for tree in (main, tmp_path / "wt1", tmp_path / "wt2")]
    assert len({identity.key for identity in identities}) == 1
    assert identities[0].relative == "infra/portalloc.json"
    for tree, identity in zip((main, tmp_path / "wt1", tmp_path / "wt2"), identities, strict=True):
        common, top = rev_parse(tree / "infra")
        assert (identity.common_dir, identity.top) == (common, top)
    assert (main / ".git" / ID_FILE).is_file()  # kept in the common directory, once
    # Which of them is a linked worktree (``worktrees: separate`` gives those pairs of their own).
    assert [identity.worktree for identity in identities] == [None, identities[1].top, identities[2].top]


def test_two_clones_are_two_repositories_and_a_moved_one_keeps_its_identity(tmp_path: Path) -> None:
    first = new_repo(tmp_path / "first")
    git(tmp_path, "clone", "-q", str(first), str(tmp_path / "second"))
    one, two = identify(first / "portalloc.json"), identify(tmp_path / "second" / "portalloc.json")
    assert one.key != two.key and one.relative == two.relative == "portalloc.json"
    shutil.move(str(first), str(tmp_path / "moved"))
    assert identify(tmp_path / "moved" / "portalloc.json").key == one.key
    (tmp_path / "link").symlink_to(tmp_path / "moved")  # reached another way: the same repository
    assert identify(tmp_path / "link" / "portalloc.json").key == one.key


def test_a_submodule_is_its_own_repository(tmp_path: Path) -> None:
    library = new_repo(tmp_path / "library")
    app = new_repo(tmp_path / "app")
    env = git_env(GIT_ALLOW_PROTOCOL="file")
    git(app, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), "lib", env=env)
    sub = identify(app / "lib" / "portalloc.json")
    top = identify(app / "portalloc.json")
    assert sub.key != top.key
    assert (sub.common_dir, sub.top) == rev_parse(app / "lib")
    assert sub.relative == "portalloc.json"
    assert sub.worktree is None and top.worktree is None  # a submodule is no linked worktree


def test_git_dir_and_work_tree_from_the_environment(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    env = {"GIT_DIR": str(repo / ".git"), "GIT_WORK_TREE": str(elsewhere)}
    identity = identify(elsewhere / "portalloc.json", env)
    assert (identity.common_dir, identity.top) == rev_parse(elsewhere, git_env(**env))
    assert identity.key == identify(repo / "portalloc.json").key  # one repository, one path in it


def test_outside_git_the_identity_is_the_real_path(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "plain")
    identity = identify(tmp_path / "alias" / "portalloc.json")
    assert identity.key == f"path:{os.path.realpath(tmp_path / 'plain' / 'portalloc.json')}"
    assert not identity.in_git
