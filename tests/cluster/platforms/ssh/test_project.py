"""What is copied to a host: git's file list (or every file but venvs, caches and the state
dir), a digest that changes with any content, and where it goes on the host."""
from __future__ import annotations

import io
import subprocess
import tarfile

from cluster.platforms.ssh.project import Remote, files_of, project_archive


def names(archive: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return sorted(tar.getnames())


def test_a_plain_directory_is_copied_without_its_venv_caches_and_state(tmp_path):
    for path in ("app.py", "pkg/mod.py", ".venv/bin/python", "pkg/__pycache__/mod.pyc",
                 ".raydeploy/state.db"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(path)
    archive, _ = project_archive(tmp_path, tmp_path / ".raydeploy")
    assert names(archive) == ["app.py", "pkg/mod.py"]


def test_a_git_checkout_is_copied_as_git_lists_it(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("secret.env\n")
    for path in ("app.py", "secret.env", "new.py"):
        (tmp_path / path).write_text(path)
    subprocess.run(["git", "-C", str(tmp_path), "add", "app.py", ".gitignore"], check=True)
    assert files_of(tmp_path, None) == [".gitignore", "app.py", "new.py"]  # not the ignored
    assert files_of(tmp_path, None, use_git=False) == [".gitignore", "app.py", "new.py",
                                                        "secret.env"]


def test_the_digest_changes_with_a_files_content_and_only_then(tmp_path):
    (tmp_path / "app.py").write_text("one")
    _, first = project_archive(tmp_path, None)
    assert project_archive(tmp_path, None)[1] == first
    (tmp_path / "app.py").write_text("two")
    assert project_archive(tmp_path, None)[1] != first


def test_a_clusters_directories_on_a_host():
    assert Remote.under("/home/ray", ".raydeploy", "c").project == "/home/ray/.raydeploy/c/project"
    assert Remote.under("/home/ray", "~/x", "c").venv == "/home/ray/x/c/project/.venv"
    assert Remote.under("/home/ray", "/srv/ray", "c").files == "/srv/ray/c/files"
