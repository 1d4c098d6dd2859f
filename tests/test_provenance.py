"""Provenance: env.json's commit is the project's own, never that of a repository it was copied
into."""

import subprocess

from bench.results.env import NOT_A_CHECKOUT
from bench.run.environment import git_state


def _git(where, *args):
    identity = ("-c", "user.name=kl-bench", "-c", "user.email=kl-bench@localhost")
    done = subprocess.run(
        ["git", *identity, *args], cwd=where, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _repository(path):
    path.mkdir()
    _git(path, "init", "-q")
    (path / "README").write_text("a project\n", encoding="utf-8")
    _git(path, "add", "README")
    _git(path, "commit", "-q", "-m", "first")
    return path


def test_the_root_of_a_work_tree_records_its_commit_and_whether_it_changed(tmp_path):
    root = _repository(tmp_path / "project")
    assert git_state(root) == {"commit": _git(root, "rev-parse", "HEAD"), "dirty": False}
    (root / "README").write_text("changed\n", encoding="utf-8")
    assert git_state(root)["dirty"] is True


def test_a_copy_inside_another_repository_is_not_a_git_checkout(tmp_path):
    other = _repository(tmp_path / "other")
    copy = other / "kl-bench"
    copy.mkdir()
    (copy / "pyproject.toml").write_text("", encoding="utf-8")
    assert git_state(copy) == {"commit": NOT_A_CHECKOUT, "dirty": None}


def test_a_copy_outside_any_repository_is_not_a_git_checkout(tmp_path):
    assert git_state(tmp_path) == {"commit": NOT_A_CHECKOUT, "dirty": None}


def test_the_report_names_a_copy_outside_a_checkout_as_such():
    from bench.report.provenance import commit_text

    assert commit_text({"commit": NOT_A_CHECKOUT, "dirty": None}) == NOT_A_CHECKOUT
    assert commit_text({"commit": "0123456789abcdef", "dirty": True}) == "0123456 (dirty)"
