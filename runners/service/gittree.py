"""The definitions as a git revision holds them, written out to a directory (`marketops diff`)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

from engine.errors import UsageError

# What a definitions repository is made of; the rest of a revision is not needed to compare.
DEFINITION_PATHS = ("marketops.yaml", "schema", "definitions")


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                              timeout=60, check=False)
    except FileNotFoundError as exc:
        raise UsageError("git is not installed; compare two directories instead "
                         "(--base DIR --head DIR)") from exc
    except subprocess.TimeoutExpired as exc:
        raise UsageError(f"git {args[0]} took more than 60 s in {root}") from exc
    return done


def _text(done: subprocess.CompletedProcess[bytes]) -> str:
    return done.stdout.decode("utf-8", "replace").strip()


def _error(done: subprocess.CompletedProcess[bytes]) -> str:
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1].removeprefix("fatal: ") if lines else f"exit {done.returncode}"


def repository(root: Path) -> str:
    """The path of `root` inside its git work tree ('' at the top); a clear error if none."""
    done = _git(root, "rev-parse", "--show-prefix")
    if done.returncode != 0:
        raise UsageError(f"{root} is not in a git repository ({_error(done)}); compare two "
                         "directories instead (--base DIR --head DIR)")
    return _text(done)


def resolve(root: Path, revision: str) -> str:
    """The commit a revision names (a branch, tag, sha, HEAD~1, ...)."""
    done = _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if done.returncode != 0 or not _text(done):
        raise UsageError(f"unknown revision '{revision}' in {root}: not a branch, tag or commit "
                         "here (fetch it first, e.g. git fetch origin main)")
    return _text(done)


def default_base(root: Path) -> tuple[str, str]:
    """(commit, how it was found): the merge-base of HEAD with the default branch.

    The default branch is the pull request's base on GitHub Actions (GITHUB_BASE_REF), else
    origin's HEAD, else origin/main, origin/master, main or master, the first that exists."""
    repository(root)  # not a repository at all says so, not "no default branch"
    candidates = []
    if os.environ.get("GITHUB_BASE_REF"):
        candidates.append(f"origin/{os.environ['GITHUB_BASE_REF']}")
    head_ref = _git(root, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD")
    if head_ref.returncode == 0 and _text(head_ref):
        candidates.append(_text(head_ref).removeprefix("refs/remotes/"))
    candidates.extend(["origin/main", "origin/master", "main", "master"])
    for branch in candidates:
        if _git(root, "rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}").returncode:
            continue
        done = _git(root, "merge-base", "HEAD", branch)
        if done.returncode == 0 and _text(done):
            return _text(done), f"merge-base of HEAD and {branch}"
    raise UsageError(f"no default branch found in {root} (tried {', '.join(candidates)}); "
                     "pass --base REV")


def export(root: Path, commit: str, target: Path) -> None:
    """Write the definition files of `commit` (at `root`'s place in the repository) under
    `target`, which must exist and be empty."""
    prefix = repository(root)
    tree = f"{commit}:{prefix}" if prefix else commit
    listing = _git(root, "ls-tree", "--name-only", tree)
    if listing.returncode != 0:
        raise UsageError(f"{commit[:12]} has no {prefix or 'top-level'} directory "
                         f"({_error(listing)})")
    present = [p for p in DEFINITION_PATHS if p in _text(listing).splitlines()]
    if not present:
        return  # a revision before the definitions existed: an empty definition set
    archive = _git(root, "archive", "--format=tar", tree, "--", *present)
    if archive.returncode != 0:
        raise UsageError(f"git archive of {commit[:12]} failed: {_error(archive)}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        # The "data" filter refuses links and paths that leave `target`.
        tar.extractall(target, filter="data")
