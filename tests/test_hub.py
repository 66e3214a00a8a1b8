"""Publish to and pull from a Hub with the real huggingface_hub client, against a loopback Hub server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
import torch
import yaml
from click.testing import CliRunner
from huggingface_hub import HfApi, ModelInfo, constants

import flashdd_zoo
from flashdd_zoo import list_labelers, load_labeler
from flashdd_zoo.errors import (
    ArtifactArgumentError,
    ArtifactError,
    ArtifactPathError,
    HubError,
    HubInvalidId,
    HubOfflineNotCached,
)
from flashdd_zoo.exporters import write_manifest
from flashdd_zoo.exporters.publish import publish_labeler

pytest.register_assert_rewrite("hub_fixtures")  # before the import below
from conftest import run_cli  # noqa: E402
from hub_fixtures import ORG, TOKEN, finish, pull_in_subprocess, soft, subprocess_env  # noqa: E402

pytest_plugins = ["hub_fixtures"]

# huggingface_hub's own LFS upload passes a file object as `data=`, which httpx2 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")

ARTIFACT = ["README.md", "config.json", "manifest.json", "metrics.json", "model.onnx", "model.safetensors"]


def _repo_files(repo_id: str, revision: str = "main") -> list[str]:
    return sorted(HfApi().list_repo_files(repo_id, revision=revision))


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flashdd_zoo", *args], capture_output=True, text=True,
                          env=env, timeout=120)


# -- publish ---------------------------------------------------------------------------------------
def test_publish_is_one_commit_and_republishing_uploads_nothing(hub, hub_env, exported):
    start = len(hub.state.log)
    first = publish_labeler(exported, f"{ORG}/once", tag="v1")
    sent = hub.state.log[start:]
    assert [r.method for r in sent if "/commit/" in r.path] == ["POST"]
    assert len([r for r in sent if r.method == "PUT"]) == 2  # model.safetensors + model.onnx via LFS
    assert any(r.path == "/api/validate-yaml" for r in sent)  # the card's YAML was checked by the Hub too
    api_calls = [r for r in sent if r.path.startswith("/api/")]
    assert all(r.authorization == f"Bearer {TOKEN}" for r in api_calls)  # token from HF_TOKEN
    assert all("flashdd-zoo/" in r.user_agent for r in api_calls)
    assert _repo_files(f"{ORG}/once") == sorted([".gitattributes", *ARTIFACT])
    refs = HfApi().list_repo_refs(f"{ORG}/once")
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", first.commit)]
    assert refs.branches[0].target_commit == first.commit and not first.unchanged

    start = len(hub.state.log)
    again = publish_labeler(exported, f"{ORG}/once", tag="v1")
    sent = hub.state.log[start:]
    assert again.unchanged and again.commit == first.commit
    assert not [r for r in sent if r.method == "PUT" or "/commit/" in r.path or "/tag/" in r.path]


def test_publish_refuses_a_bad_folder_before_sending_anything(hub, hub_env, exported, tmp_path):
    tampered = tmp_path / "tampered"
    shutil.copytree(exported, tampered)
    (tampered / "config.json").write_text((tampered / "config.json").read_text().replace('"pruned"', '"teacher"'))
    bad_card = tmp_path / "bad-card"
    shutil.copytree(exported, bad_card)
    card = (bad_card / "README.md").read_text()
    (bad_card / "README.md").write_text(card.replace("library_name: flashdd-zoo", "library_name: [flashdd-zoo"))
    write_manifest(bad_card)  # the manifest agrees; only the YAML is broken

    start = len(hub.state.log)
    with pytest.raises(ArtifactError, match="config.json has .* bytes but the manifest says"):
        publish_labeler(tampered, f"{ORG}/refused")
    with pytest.raises(ArtifactError, match="(?s)invalid YAML front matter.*flashdd-zoo card"):
        publish_labeler(bad_card, f"{ORG}/refused")
    assert hub.state.log[start:] == []


def test_publish_never_moves_a_tag(hub_env, published, exported):
    with pytest.raises(HubError, match="Tag 'v1' .* already points at commit") as e:
        publish_labeler(exported, f"{ORG}/lab", tag="v1")  # main is at `changed` now, v1 elsewhere
    assert e.value.reason == "tag_conflict"


# -- pull ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pulled(hub_env, published, images, tmp_path_factory):
    """org/lab pulled by a fresh interpreter with an empty HF cache: v1, main and v1's commit."""
    home = tmp_path_factory.mktemp("hf-pull")
    first, _ = published
    specs = [{"repo": f"{ORG}/lab", "revision": "v1"}, {"repo": f"{ORG}/lab"},
             {"repo": f"{ORG}/lab", "revision": first.commit}]
    out, ys = pull_in_subprocess(home / "run", images, specs, subprocess_env(home))
    return home, out, ys


def test_fresh_process_pulls_bit_identical_labels_and_pins_tags(pulled, published, exported, changed, images):
    home, out, (v1, main, by_commit) = pulled
    first, second = published
    assert torch.equal(v1, soft(exported, images))  # bit-identical to the local folder
    assert torch.equal(by_commit, v1)
    assert torch.equal(main, soft(changed, images)) and not torch.equal(main, v1)  # main moved, v1 did not
    snapshots = home / "hub" / f"models--{ORG}--lab" / "snapshots"
    assert out.split() == [str(snapshots / first.commit), str(snapshots / second.commit), str(snapshots / first.commit)]
    assert sorted(p.name for p in (snapshots / first.commit).iterdir()) == ARTIFACT  # .gitattributes not fetched


def test_offline_process_loads_from_cache_without_a_request(hub, pulled, images, exported, changed):
    home, _, _ = pulled
    start = len(hub.state.log)
    specs = [{"repo": f"{ORG}/lab", "revision": "v1"}, {"repo": f"{ORG}/lab"}]
    _, (v1, main) = pull_in_subprocess(home / "offline", images, specs, subprocess_env(home, HF_HUB_OFFLINE="1"))
    assert torch.equal(v1, soft(exported, images)) and torch.equal(main, soft(changed, images))
    assert hub.state.log[start:] == []


def test_offline_and_not_cached_is_a_clear_error(hub_env, published, images, fresh_cache, tmp_path):
    with pytest.raises(HubError, match="offline .* not in the local Hugging Face cache") as e:
        load_labeler(f"{ORG}/lab", revision="v1", local_files_only=True, cache_dir=fresh_cache / "hub")
    assert e.value.reason == "offline_not_cached"
    proc = pull_in_subprocess(tmp_path, images, [{"repo": f"{ORG}/lab"}],
                              subprocess_env(fresh_cache, HF_HUB_OFFLINE="1"), wait=False)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "HubOfflineNotCached: offline" in err and "flashdd-zoo pull" in err


def test_two_processes_load_the_same_labeler_at_once(hub_env, published, images, exported, fresh_cache, tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    env = subprocess_env(fresh_cache, PULL_GATE=str(gate))
    spec = [{"repo": f"{ORG}/lab", "revision": "v1"}]
    procs = [pull_in_subprocess(tmp_path / f"p{i}", images, spec, env, wait=False) for i in range(2)]
    deadline = time.monotonic() + 60
    while len(list(gate.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    (gate / "go").touch()  # both interpreters are up: they now resolve and download at the same moment
    results = [finish(p, tmp_path / f"p{i}" / "y.safetensors") for i, p in enumerate(procs)]
    (_, (a,)), (_, (b,)) = results
    assert torch.equal(a, b) and torch.equal(a, soft(exported, images))
    blobs = list((fresh_cache / "hub" / f"models--{ORG}--lab" / "blobs").iterdir())
    assert len(blobs) == len(ARTIFACT) and not [p for p in blobs if p.name.endswith(".incomplete")]


def test_tampered_blob_in_cache_is_refused_then_repaired(hub_env, published, images, exported, fresh_cache):
    cache = fresh_cache / "hub"
    labeler = load_labeler(f"{ORG}/lab", revision="v1", cache_dir=cache)
    blob = (labeler.folder / "model.safetensors").resolve()  # the snapshot entry links to the blob
    blob.write_bytes(blob.read_bytes()[:-100])
    for offline in (False, True):
        with pytest.raises(ArtifactError, match="model.safetensors has .* bytes but the manifest says") as e:
            load_labeler(f"{ORG}/lab", revision="v1", cache_dir=cache, local_files_only=offline)
        assert "force_download=True" in str(e.value) and "--force-download" in str(e.value)
    repaired = load_labeler(f"{ORG}/lab", revision="v1", cache_dir=cache, force_download=True)
    assert torch.equal(repaired.soft_labels(images), soft(exported, images))


def test_load_labeler_uses_the_endpoint_token_and_runtime_options_it_is_given(hub, hub_env, exported, images,
                                                                             fresh_cache, monkeypatch):
    publish_labeler(exported, f"{ORG}/private-lab", private=True)
    dead = "http://127.0.0.1:9"  # the environment points at nothing, without a token
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    monkeypatch.setenv("HF_ENDPOINT", dead)
    monkeypatch.delenv("HF_TOKEN")
    labeler = load_labeler(f"{ORG}/private-lab", endpoint=hub.url, token=TOKEN, cache_dir=fresh_cache / "hub",
                           backend="onnx")
    assert labeler.backend == "onnx"
    assert torch.allclose(labeler.soft_labels(images), soft(exported, images), atol=1e-4)


def test_every_request_and_error_of_a_download_uses_the_given_endpoint_and_token(hub, hub_env, exported,
                                                                                 fresh_cache, monkeypatch):
    repo = f"{ORG}/private-refs"
    publish_labeler(exported, repo, private=True, tag="v1")
    dead = "http://127.0.0.1:9"  # the environment points at nothing, without a token
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    monkeypatch.setenv("HF_ENDPOINT", dead)
    monkeypatch.delenv("HF_TOKEN")
    given = dict(endpoint=hub.url, token=TOKEN, cache_dir=fresh_cache / "hub")
    start = len(hub.state.log)
    load_labeler(repo, **given)
    fetched = hub.state.log[start:]
    assert fetched and all(f"flashdd-zoo/{flashdd_zoo.__version__}" in r.user_agent for r in fetched)

    url = re.escape(hub.url)
    with pytest.raises(HubError, match=rf"^{repo} on {url} has no branch, tag or commit 'v9' "
                       r"\(it has branches: main; tags: v1\)\."):  # the refs were listed with the given token
        load_labeler(repo, revision="v9", **given)
    with pytest.raises(HubError, match=rf"^no model repo {ORG}/nope on {url} \(and no local folder of that name\)\. "):
        load_labeler(f"{ORG}/nope", **given)
    offline = dict(given, local_files_only=True)
    for revision in ("v1", "v9"):  # neither is in the cache (main is): both are not-cached errors, with no request
        start = len(hub.state.log)
        with pytest.raises(HubOfflineNotCached, match=rf"and {repo}@{revision} is not in the local Hugging Face cache"
                           rf"\..*`flashdd-zoo pull {repo} --revision {revision}`"):
            load_labeler(repo, revision=revision, **offline)
        assert hub.state.log[start:] == []


def test_an_unknown_backend_is_refused_before_anything_is_fetched(hub, hub_env, fresh_cache):
    start = len(hub.state.log)
    with pytest.raises(ArtifactArgumentError, match=r"^unknown backend 'tensorrt'; choose one of \('torch', 'onnx'\)\.$"):
        load_labeler(f"{ORG}/lab", cache_dir=fresh_cache / "hub", backend="tensorrt")
    assert hub.state.log[start:] == []


def test_a_labeler_in_a_nested_folder_loads_by_its_path_with_or_without_slashes_around_it(hub_env, exported, images,
                                                                                         fresh_cache):
    repo = f"{ORG}/zoo-nested"
    publish_labeler(exported, repo, path_in_repo="cifar10/resnet18q-X")
    labeler = load_labeler(repo, name="/cifar10/resnet18q-X/", cache_dir=fresh_cache / "hub")
    assert labeler.folder.parts[-2:] == ("cifar10", "resnet18q-X")
    assert torch.equal(labeler.soft_labels(images), soft(exported, images))


def test_a_refetch_hint_names_the_revision_and_the_folder_asked_for(hub_env, exported, images, fresh_cache):
    repo = f"{ORG}/zoo-hint"
    publish_labeler(exported, repo, path_in_repo="resnet18q-ipc10", tag="v2")
    cache = fresh_cache / "hub"
    labeler = load_labeler(repo, revision="v2", name="resnet18q-ipc10", cache_dir=cache)
    blob = (labeler.folder / "model.safetensors").resolve()
    blob.write_bytes(blob.read_bytes()[:-100])
    with pytest.raises(ArtifactError) as e:
        load_labeler(repo, revision="v2", name="resnet18q-ipc10", cache_dir=cache)
    assert f"This copy of {repo}@v2 (commit " in str(e.value)
    assert f"`flashdd-zoo pull {repo} --revision v2 --name resnet18q-ipc10 --force-download`" in str(e.value)


def test_file_altered_on_the_server_is_refused(hub, hub_env, exported, fresh_cache):
    commit = publish_labeler(exported, f"{ORG}/altered").commit
    hub.state.corrupt(f"{ORG}/altered", "model.onnx")
    with pytest.raises(ArtifactError, match="model.onnx does not match its sha256") as e:
        load_labeler(f"{ORG}/altered", cache_dir=fresh_cache / "hub", backend="onnx")
    assert "tell the publisher" in str(e.value)
    assert f"This copy of {ORG}/altered (commit {commit}) is in the" in str(e.value)  # no revision asked: no @
    assert f"`flashdd-zoo pull {ORG}/altered --force-download`" in str(e.value)


def test_cli_pull_refuses_a_file_altered_on_the_server(hub, hub_env, exported, fresh_cache):
    """`flashdd-zoo pull` verifies what it fetched against the manifest (no load involved)."""
    publish_labeler(exported, f"{ORG}/altered-pull")
    hub.state.corrupt(f"{ORG}/altered-pull", "model.safetensors")
    res = _cli("pull", f"{ORG}/altered-pull", env=subprocess_env(fresh_cache))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "model.safetensors does not match its sha256" in res.stderr
    assert "manifest sha256 verified" not in res.stdout


def test_cli_pull_refuses_a_corrupted_cached_file_until_force_download(hub_env, published, fresh_cache):
    """A cached blob with one bit flipped (same size, so only the sha256 can tell), pulled through the
    CLI in-process: refused online and offline, with the repair command named; --force-download repairs."""
    cache = fresh_cache / "hub"
    first, _ = published
    pull = ["pull", f"{ORG}/lab", "--revision", "v1", "--cache-dir", cache]
    folder = Path(run_cli(*pull).stdout.strip().splitlines()[-1])
    assert folder.name == first.commit  # v1's snapshot, not main's
    blob = (folder / "model.onnx").resolve()
    good = blob.read_bytes()
    blob.write_bytes(good[:1000] + bytes([good[1000] ^ 1]) + good[1001:])
    for extra in ([], ["--local-files-only"]):
        res = run_cli(*pull, *extra, check=False)
        assert res.returncode == 1 and "Traceback" not in res.stderr
        assert "model.onnx does not match its sha256" in res.stderr and f"{ORG}/lab --revision v1 --force-download" in res.stderr
        assert f"This copy of {ORG}/lab@v1 (commit {first.commit}) is in the Hugging Face cache at {folder}." in res.stderr
        assert "the repo's files do not match the manifest they were published with: tell the publisher." in res.stderr
        assert "manifest sha256 verified" not in res.stdout
    fixed = run_cli(*pull, "--force-download")
    assert "manifest sha256 verified" in fixed.stdout
    assert (Path(fixed.stdout.strip().splitlines()[-1]) / "model.onnx").read_bytes() == good


def test_manifest_listing_a_path_out_of_the_folder_is_refused_before_the_files_are_fetched(
        hub, hub_env, exported, fresh_cache, tmp_path):
    """The Hub download's listing step applies the local rule to the manifest it fetched first:
    nothing it lists is downloaded (model files included) once one entry leads out of the folder."""
    escape = tmp_path / "escape"
    shutil.copytree(exported, escape)
    manifest = json.loads((escape / "manifest.json").read_text())
    manifest["files"]["../../../../outside.txt"] = {"sha256": "0" * 64, "bytes": 1}
    (escape / "manifest.json").write_text(json.dumps(manifest))
    api = HfApi()
    api.create_repo(f"{ORG}/escape")
    api.upload_folder(repo_id=f"{ORG}/escape", folder_path=escape)
    refusal = r"lists '\.\./\.\./\.\./\.\./outside\.txt', a path outside the labeler folder"
    start = len(hub.state.log)
    with pytest.raises(ArtifactPathError, match=refusal):
        load_labeler(f"{ORG}/escape", cache_dir=fresh_cache / "hub")
    res = run_cli("pull", f"{ORG}/escape", "--cache-dir", fresh_cache / "hub-cli", check=False)
    assert res.returncode == 1 and "a path outside the labeler folder" in res.stderr and "Traceback" not in res.stderr
    fetched = [r.path for r in hub.state.log[start:] if r.method in ("GET", "HEAD") and "/resolve/" in r.path]
    assert fetched and all(p.endswith(("/config.json", "/manifest.json")) for p in fetched), fetched
    # a labeler name that leaves the repo is refused before any request
    start = len(hub.state.log)
    for name in ("../lab", "zoo/../../lab", "."):
        with pytest.raises(HubInvalidId, match="must be a folder inside the repo"):
            load_labeler(f"{ORG}/lab", name=name, cache_dir=fresh_cache / "hub")
    assert hub.state.log[start:] == []


def test_repo_and_revision_not_found(hub_env, published, fresh_cache):
    cache = fresh_cache / "hub"
    with pytest.raises(HubError, match=f"no model repo {ORG}/nope on http://127.0.0.1") as e:
        load_labeler(f"{ORG}/nope", cache_dir=cache)
    assert e.value.reason == "repo_not_found" and "HF_TOKEN" in str(e.value)
    with pytest.raises(HubError, match=rf"{ORG}/lab .* no branch, tag or commit 'v9' \(it has branches: main; tags: v1\)") as e:
        load_labeler(f"{ORG}/lab", revision="v9", cache_dir=cache)
    assert e.value.reason == "revision_not_found"
    with pytest.raises(ArtifactError, match="neither a labeler folder on this machine nor a Hub repo id"):
        load_labeler("no such folder", cache_dir=cache)


def test_local_folders_still_load_as_before(exported, images):
    assert torch.equal(load_labeler(str(exported)).soft_labels(images), soft(exported, images))
    zoo = load_labeler(exported.parent, name=exported.name)  # a local zoo folder, like a zoo repo
    assert zoo.folder == exported
    with pytest.raises(ArtifactError, match="revision only apply to Hub repo ids"):
        load_labeler(str(exported), revision="v1")


def test_not_a_labeler_repo(hub, hub_env, fresh_cache, tmp_path):
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n# just a model\n")
    (tmp_path / "weights.bin").write_bytes(bytes(range(256)) * 64)
    api = HfApi()
    api.create_repo(f"{ORG}/not-a-labeler")
    api.upload_folder(repo_id=f"{ORG}/not-a-labeler", folder_path=tmp_path)
    start = len(hub.state.log)
    with pytest.raises(HubError, match="is not a flashdd-zoo labeler: it has no config.json") as e:
        load_labeler(f"{ORG}/not-a-labeler", cache_dir=fresh_cache / "hub")
    assert e.value.reason == "not_a_labeler" and str(e.value) == (
        f"{ORG}/not-a-labeler@main is not a flashdd-zoo labeler: it has no config.json + manifest.json. It holds no "
        "flashdd-zoo labeler; check the repo id (and name=), or publish one with `flashdd-zoo publish`.")
    assert not [r for r in hub.state.log[start:] if "weights.bin" in r.path]  # nothing large fetched


def test_pull_refuses_a_repo_whose_manifest_leaves_out_a_required_file(hub_env, exported, fresh_cache, tmp_path):
    """Published by hand without model.onnx, its manifest rewritten to match: every listed file verifies,
    but the labeler is incomplete, and `pull` says so with the way to fetch it again."""
    partial = tmp_path / "partial"
    shutil.copytree(exported, partial)
    (partial / "model.onnx").unlink()
    write_manifest(partial)
    api = HfApi()
    api.create_repo(f"{ORG}/partial")
    api.upload_folder(repo_id=f"{ORG}/partial", folder_path=partial)
    res = run_cli("pull", f"{ORG}/partial", "--cache-dir", fresh_cache / "hub", check=False)
    assert res.returncode == 1 and "manifest.json does not list required file model.onnx." in res.stderr
    assert f"`flashdd-zoo pull {ORG}/partial --force-download`" in res.stderr
    assert "manifest sha256 verified" not in res.stdout


def test_artifact_from_a_newer_version_is_refused_before_weights_download(hub, hub_env, exported, fresh_cache, tmp_path):
    newer = tmp_path / "newer"
    shutil.copytree(exported, newer)
    config = json.loads((newer / "config.json").read_text())
    config.update(format_version=99, flashdd_zoo_version="9.0.0")
    (newer / "config.json").write_text(json.dumps(config))
    write_manifest(newer)
    api = HfApi()  # as a future flashdd-zoo would publish it
    api.create_repo(f"{ORG}/from-the-future")
    api.upload_folder(repo_id=f"{ORG}/from-the-future", folder_path=newer)
    start = len(hub.state.log)
    with pytest.raises(ArtifactError, match="artifact format version 99 .* pip install -U flashdd-zoo"):
        load_labeler(f"{ORG}/from-the-future", cache_dir=fresh_cache / "hub")
    assert not [r for r in hub.state.log[start:] if "model." in r.path]


# -- a zoo in one repo, and the index ----------------------------------------------------------------
def test_zoo_repo_holds_one_labeler_per_subfolder(hub_env, exported, changed, images, fresh_cache):
    repo = f"{ORG}/zoo"
    publish_labeler(exported, repo, path_in_repo="resnet18q-ipc10")
    publish_labeler(changed, repo, path_in_repo="resnet18q-ipc50")
    cache = fresh_cache / "hub"
    b = load_labeler(repo, name="resnet18q-ipc50", cache_dir=cache)
    assert torch.equal(b.soft_labels(images), soft(changed, images))
    pull = ["pull", repo, "--name", "resnet18q-ipc50", "--cache-dir", cache]
    assert Path(run_cli(*pull).stdout.strip().splitlines()[-1]) == b.folder
    blob = (b.folder / "config.json").resolve()
    blob.write_bytes(blob.read_bytes() + b" ")  # still valid JSON; only the manifest can tell
    res = run_cli(*pull, check=False)
    assert res.returncode == 1 and f"`flashdd-zoo pull {repo} --name resnet18q-ipc50 --force-download`" in res.stderr
    run_cli(*pull, "--force-download")
    with pytest.raises(HubError) as e:
        load_labeler(repo, cache_dir=cache)
    assert e.value.reason == "not_a_labeler" and str(e.value).endswith(
        f"Labelers in this repo: resnet18q-ipc10, resnet18q-ipc50; load one with load_labeler('{repo}', "
        f"name='resnet18q-ipc10') or `flashdd-zoo pull {repo} --name resnet18q-ipc10`.")
    with pytest.raises(HubError, match=f"^{repo}@main folder 'resnet18q-ipc99' is not a flashdd-zoo labeler"):
        load_labeler(repo, name="resnet18q-ipc99", cache_dir=cache)

    entries = list_labelers(repo_id=repo)
    assert [(x.name, x.dataset, x.ipc, x.kind) for x in entries] == [
        ("resnet18q-ipc10", "cifar10", 10, "pruned"), ("resnet18q-ipc50", "cifar10", 50, "pruned")]
    metrics = json.loads((changed / "metrics.json").read_text())
    assert (entries[1].params, entries[1].weights_bytes, entries[1].student_top1) == (
        metrics["params"], metrics["weights_bytes"], 41.25)

    assert "resnet18q-ipc50/plots/curve.png" in _repo_files(repo)
    publish_labeler(exported, repo, path_in_repo="resnet18q-ipc50")  # replace: its old plot goes
    files = _repo_files(repo)
    assert "resnet18q-ipc50/plots/curve.png" not in files
    assert [f for f in files if f.startswith("resnet18q-ipc10/")] == [f"resnet18q-ipc10/{f}" for f in ARTIFACT]


def test_a_repo_with_a_config_but_no_manifest_at_a_tag_is_not_a_labeler(hub_env, exported, fresh_cache, tmp_path):
    repo = f"{ORG}/config-only"
    shutil.copy(exported / "config.json", tmp_path / "config.json")
    api = HfApi()
    api.create_repo(repo)
    api.upload_folder(repo_id=repo, folder_path=tmp_path)
    api.create_tag(repo, tag="v3")
    with pytest.raises(HubError) as e:
        load_labeler(repo, revision="v3", cache_dir=fresh_cache / "hub")
    assert e.value.reason == "not_a_labeler"
    assert str(e.value).startswith(f"{repo}@v3 is not a flashdd-zoo labeler: it has no config.json + manifest.json.")


def test_only_the_files_the_manifest_lists_are_downloaded(hub, hub_env, exported, fresh_cache, tmp_path):
    repo = f"{ORG}/with-extras"
    publish_labeler(exported, repo)
    (tmp_path / "training-log.txt").write_text("not part of the labeler\n")
    HfApi().upload_folder(repo_id=repo, folder_path=tmp_path)
    start = len(hub.state.log)
    labeler = load_labeler(repo, cache_dir=fresh_cache / "hub")
    assert sorted(p.name for p in labeler.folder.iterdir()) == ARTIFACT
    assert not [r for r in hub.state.log[start:] if "training-log" in r.path]


def test_not_a_labeler_hint_lists_the_folders_of_the_revision_asked_for(hub_env, exported, changed, fresh_cache):
    repo = f"{ORG}/growing"
    publish_labeler(exported, repo, path_in_repo="first", tag="v1")
    publish_labeler(changed, repo, path_in_repo="second")  # main moves on; v1 still holds only `first`
    cache = fresh_cache / "hub"
    for revision, folders in ((None, "first, second"), ("v1", "first")):  # main's listing is cached first
        with pytest.raises(HubError) as e:
            load_labeler(repo, revision=revision, cache_dir=cache)
        assert f"Labelers in this repo: {folders}; load one with" in str(e.value), revision


def test_zoo_listing_reads_the_asked_revision_a_root_labeler_and_skips_folders_without_a_card(
        hub_env, exported, changed, fresh_cache, tmp_path):
    repo = f"{ORG}/mixed"
    root = publish_labeler(exported, repo)  # a labeler at the repo's root (name None)
    both = publish_labeler(changed, repo, path_in_repo="v2")
    HfApi().upload_file(path_or_fileobj=(exported / "manifest.json"), path_in_repo="a-draft/manifest.json",
                        repo_id=repo)  # sorts first, holds a manifest but no card: not a labeler yet
    publish_labeler(exported, repo, path_in_repo="v2")  # main's v2 is now `exported` (IPC 10)
    _, front, body = (exported / "README.md").read_text(encoding="utf-8").split("---\n", 2)
    meta = yaml.safe_load(front)
    meta["model-index"] = [{"name": "no results"}]  # hand-edited: huggingface_hub cannot parse it
    broken = tmp_path / "README.md"
    broken.write_text(f"---\n{yaml.safe_dump(meta)}---\n{body}", encoding="utf-8")
    for rel, path in (("v3/manifest.json", exported / "manifest.json"), ("v3/README.md", broken)):
        HfApi().upload_file(path_or_fileobj=path, path_in_repo=rel, repo_id=repo)
    cache = fresh_cache / "index"
    now = list_labelers(repo_id=repo, cache_dir=cache)
    assert [(e.repo_id, e.name, e.ipc) for e in now] == [(repo, None, 10), (repo, "v2", 10), (repo, "v3", 10)]
    assert (cache / f"models--{ORG}--mixed" / "snapshots").is_dir()  # the cards went to the cache asked for
    at_both = list_labelers(repo_id=repo, revision=both.commit, cache_dir=cache)
    assert [(e.name, e.ipc) for e in at_both] == [(None, 10), ("v2", 50)]  # v2's card as it was then
    assert [(e.name, e.ipc) for e in list_labelers(repo_id=repo, revision=root.commit, cache_dir=cache)] == [(None, 10)]


def test_list_labelers_of_an_organisation(hub_env, published, exported, changed, monkeypatch):
    publish_labeler(exported, "someone-else/lab")
    publish_labeler(exported, f"{ORG}/hidden", private=True)
    entries = {e.repo_id: e for e in list_labelers(ORG)}
    assert {f"{ORG}/lab", f"{ORG}/hidden"} <= set(entries) and "someone-else/lab" not in entries
    assert f"{ORG}/zoo" not in entries  # a zoo repo without a root card is listed with `ls ORG/ZOO`
    lab = entries[f"{ORG}/lab"]  # main holds `changed`
    metrics = json.loads((changed / "metrics.json").read_text())
    assert (lab.labeler, lab.dataset, lab.ipc, lab.params, lab.weights_bytes, lab.student_top1) == (
        "resnet18q-cifar10-v2", "cifar10", 50, metrics["params"], metrics["weights_bytes"], 41.25)
    row = lab.as_dict()  # what `flashdd-zoo ls --json` prints for it
    assert list(row) == ["repo_id", "name", "labeler", "kind", "dataset", "ipc", "params", "weights_bytes",
                         "student_top1", "tau", "teacher_top1"]
    assert (row["repo_id"], row["name"], row["kind"], row["params"]) == (f"{ORG}/lab", None, "pruned", metrics["params"])
    assert json.loads(json.dumps(row)) == row
    monkeypatch.delenv("HF_TOKEN")
    assert f"{ORG}/hidden" not in {e.repo_id for e in list_labelers(ORG)}  # private: only with a token
    with pytest.raises(HubError, match="no model repo"):
        load_labeler(f"{ORG}/hidden")


def test_an_organisation_listing_holds_only_repos_tagged_flashdd_zoo(hub_env, exported, tmp_path):
    """A card with a flashdd block whose repo is not tagged flashdd-zoo (edited by hand) is not listed."""
    untagged = tmp_path / "untagged"
    shutil.copytree(exported, untagged)
    _, front, body = (untagged / "README.md").read_text(encoding="utf-8").split("---\n", 2)
    meta = yaml.safe_load(front)
    meta["library_name"], meta["tags"] = "other-library", [t for t in meta["tags"] if t != "flashdd-zoo"]
    (untagged / "README.md").write_text(f"---\n{yaml.safe_dump(meta)}---\n{body}", encoding="utf-8")
    api = HfApi()
    api.create_repo(f"{ORG}/untagged")
    api.upload_folder(repo_id=f"{ORG}/untagged", folder_path=untagged)
    publish_labeler(exported, f"{ORG}/tagged")
    listed = {e.repo_id for e in list_labelers(ORG)}
    assert f"{ORG}/tagged" in listed and f"{ORG}/untagged" not in listed


def test_list_labelers_uses_the_endpoint_and_token_it_is_given_and_names_them_in_errors(hub, hub_env, exported,
                                                                                       monkeypatch, tmp_path):
    carded = tmp_path / "carded"  # a card whose block states tau(D_S) and the labeler's top-1
    shutil.copytree(exported, carded)
    _, front, body = (carded / "README.md").read_text(encoding="utf-8").split("---\n", 2)
    meta = yaml.safe_load(front)
    meta["flashdd"].update(tau_mean=31.25, teacher_top1=66.5)
    (carded / "README.md").write_text(f"---\n{yaml.safe_dump(meta)}---\n{body}", encoding="utf-8")
    write_manifest(carded)
    publish_labeler(carded, f"{ORG}/own-private", private=True)
    for both_or_neither in ({"author": ORG, "repo_id": f"{ORG}/own-private"}, {}):
        with pytest.raises(HubInvalidId, match=r"^list_labelers takes an organisation \(author=\) or a zoo repo "
                           r"\(repo_id=\), not both\.$"):
            list_labelers(**both_or_neither)
    dead = "http://127.0.0.1:9"  # nothing listens there
    with pytest.raises(HubError, match=f"^cannot reach the Hub at {re.escape(dead)} "):
        list_labelers(ORG, endpoint=dead)  # the environment's Hub is up: only the argument is unreachable
    monkeypatch.setattr(constants, "ENDPOINT", dead)  # now the environment points at nothing, without a token
    monkeypatch.setenv("HF_ENDPOINT", dead)
    monkeypatch.delenv("HF_TOKEN")
    given = dict(endpoint=hub.url, token=TOKEN)
    assert f"{ORG}/own-private" in {e.repo_id for e in list_labelers(ORG, **given)}  # private: the token was used
    (entry,) = list_labelers(repo_id=f"{ORG}/own-private", **given)
    assert (entry.name, entry.ipc, entry.tau, entry.teacher_top1) == (None, 10, 31.25, 66.5)  # the card's block
    with pytest.raises(HubError, match=f"^no model repo {ORG}/nope on {re.escape(hub.url)}\\. "):
        list_labelers(repo_id=f"{ORG}/nope", **given)
    with pytest.raises(HubError, match=f"^{ORG}/own-private on {re.escape(hub.url)} has no branch, tag or commit 'v9'"):
        list_labelers(repo_id=f"{ORG}/own-private", revision="v9", **given)


def test_an_organisation_listing_while_offline_names_the_organisation_and_the_fix(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubOfflineNotCached, match=rf"^HF_HUB_OFFLINE=1 is set, so {ORG}/\* cannot be reached on "
                       r"http://127\.0\.0\.1:9; unset it to talk to the Hub\.$"):
        list_labelers(ORG, endpoint="http://127.0.0.1:9")


def test_a_search_hit_without_card_data_is_not_listed(monkeypatch):
    # The Hub's search gives card_data None for a tagged repo without a README; such a hit is no labeler.
    monkeypatch.setattr(HfApi, "list_models", lambda self, **_: iter([ModelInfo(id=f"{ORG}/bare", tags=["flashdd-zoo"])]))
    assert list_labelers(ORG, endpoint="http://127.0.0.1:9") == []


# -- command line ------------------------------------------------------------------------------------
def test_help_documents_every_option_and_self_hosted_endpoints():
    from flashdd_zoo.cli import main

    for name in ("publish", "pull", "ls"):
        text = CliRunner().invoke(main, [name, "--help"], terminal_width=200).output
        for param in main.commands[name].params:
            for opt in param.opts if isinstance(param, click.Option) else ():
                assert opt in text, f"{name} --help does not mention {opt}"
        assert "HF_ENDPOINT" in text and "HF_TOKEN" in text
    assert "HF_HUB_DISABLE_XET=1" in CliRunner().invoke(main, ["publish", "--help"]).output
    assert "HF_HUB_OFFLINE=1" in CliRunner().invoke(main, ["pull", "--help"]).output


def test_cli_publish_pull_ls(hub, hub_env, exported, fresh_cache):
    env = subprocess_env(fresh_cache)
    res = _cli("publish", str(exported), "--repo-id", f"{ORG}/cli", "--tag", "v1", env=env)
    assert res.returncode == 0, res.stderr
    commit = HfApi().list_repo_refs(f"{ORG}/cli").branches[0].target_commit
    assert f"commit {commit}" in res.stdout and "tag v1" in res.stdout
    assert TOKEN not in res.stdout + res.stderr
    assert all(TOKEN.encode() not in blob for blob in hub.state.blobs.values())  # not written to any file

    res = _cli("pull", f"{ORG}/cli", "--revision", "v1", env=env)
    assert res.returncode == 0, res.stderr
    folder = Path(res.stdout.strip().splitlines()[-1])
    assert folder == fresh_cache / "hub" / f"models--{ORG}--cli" / "snapshots" / commit
    assert "manifest sha256 verified" in res.stdout and sorted(p.name for p in folder.iterdir()) == ARTIFACT

    res = _cli("ls", ORG, "--json", env=env)
    assert res.returncode == 0, res.stderr
    listed = {e["repo_id"]: e for e in json.loads(res.stdout)}
    assert listed[f"{ORG}/cli"]["params"] == json.loads((exported / "metrics.json").read_text())["params"]
    table = _cli("ls", f"{ORG}/cli", env=env).stdout
    assert f"{ORG}/cli" in table and "cifar10" in table and "pruned" in table


def test_cli_errors_are_one_line(hub_env, exported, fresh_cache):
    env = subprocess_env(fresh_cache)
    res = _cli("pull", f"{ORG}/nope", env=env)
    assert res.returncode != 0 and "Traceback" not in res.stderr and f"no model repo {ORG}/nope" in res.stderr
    env.pop("HF_TOKEN")
    res = _cli("publish", str(exported), "--repo-id", f"{ORG}/anonymous", env=env)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "refused" in res.stderr and "HF_TOKEN" in res.stderr
