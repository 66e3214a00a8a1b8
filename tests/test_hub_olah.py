"""Cross-check of the pull side against a Hub server that is not ours: olah, a self-hosted Hub mirror,
serving a local git repository of labeler folders fully offline (mirrors-path, offline = true)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
import torch

from flashdd_zoo import load_labeler
from flashdd_zoo.errors import HubError

pytest.register_assert_rewrite("hub_fixtures")  # before the import below
from hub_fixtures import ORG, soft  # noqa: E402

pytest_plugins = ["hub_fixtures"]

import olah  # noqa: E402,F401  (the dev extra installs it; a missing olah is a failure, not a skip)

GIT = ["git", "-c", "user.name=flashdd-test", "-c", "user.email=test@flashdd.invalid", "-c", "commit.gpgsign=false"]


def _commit_folder(repo: Path, folder: Path, message: str) -> str:
    """Replace the work tree with `folder`'s files and commit; returns the commit id."""
    for old in repo.iterdir():
        if old.name != ".git":
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    shutil.copytree(folder, repo, dirs_exist_ok=True)
    for args in (["add", "-A"], ["commit", "-q", "-m", message]):
        subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True)
    return subprocess.run([*GIT, "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"olah exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx2.get(f"{url}/api/models/{ORG}/lab/revision/main", timeout=2).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"olah did not answer within 60 s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def olah_hub(tmp_path_factory, exported, changed):
    """olah serving ORG/lab from a git mirror: tag v1 = `exported`, main = `changed`."""
    root = tmp_path_factory.mktemp("olah")
    repo = root / "mirrors" / "models" / ORG / "lab"
    repo.mkdir(parents=True)
    subprocess.run([*GIT, "init", "-q", "-b", "main", str(repo)], check=True, capture_output=True)
    first = _commit_folder(repo, exported, "labeler v1")
    subprocess.run([*GIT, "-C", str(repo), "tag", "v1"], check=True, capture_output=True)
    _commit_folder(repo, changed, "labeler v2")
    port = _free_port()
    config = root / "olah.toml"
    config.write_text(f'[basic]\nhost = "127.0.0.1"\nport = {port}\nrepos-path = "{root / "cache"}"\n'
                      f'mirrors-path = ["{root / "mirrors"}"]\n\n[accessibility]\noffline = true\n')
    log = root / "olah.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "olah.server", "--config", str(config),
                                 "--log-path", str(root / "logs")], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log)
        yield url, first
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_labeler_served_by_olah_loads_bit_identically(olah_hub, exported, changed, images, tmp_path):
    url, first = olah_hub
    cache = tmp_path / "hub"
    pull = dict(endpoint=url, cache_dir=cache, token=False)
    v1 = load_labeler(f"{ORG}/lab", revision="v1", **pull)
    assert torch.equal(v1.soft_labels(images), soft(exported, images))
    assert v1.folder == cache / f"models--{ORG}--lab" / "snapshots" / first
    main = load_labeler(f"{ORG}/lab", **pull)
    assert torch.equal(main.soft_labels(images), soft(changed, images))
    by_commit = load_labeler(f"{ORG}/lab", revision=first, **pull)
    assert by_commit.folder == v1.folder
    offline = load_labeler(f"{ORG}/lab", revision="v1", local_files_only=True, cache_dir=cache)
    assert torch.equal(offline.soft_labels(images), soft(exported, images))


def test_olah_errors_read_as_ours(olah_hub, tmp_path):
    url, _ = olah_hub
    pull = dict(endpoint=url, cache_dir=tmp_path / "hub", token=False)
    with pytest.raises(HubError) as e:
        load_labeler(f"{ORG}/absent", **pull)
    assert e.value.reason == "repo_not_found"
    with pytest.raises(HubError) as e:
        load_labeler(f"{ORG}/lab", revision="v9", **pull)
    assert e.value.reason == "revision_not_found" and "tags: v1" in str(e.value)
