"""`flashdd-zoo publish`, `pull` and `ls`: share labelers through the Hugging Face Hub or a self-hosted one.

Standalone click commands; cli/__init__.py registers them on its group.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from .common import console, friendly_errors

ENDPOINT_HELP = ("Hub to talk to (default: $HF_ENDPOINT, else https://huggingface.co). For a self-hosted "
                 "Hub-compatible server give its base URL, e.g. http://hub.internal:8080.")
TOKEN_HELP = ("Hub token (default: $HF_TOKEN, else the token saved by `hf auth login`). Prefer those: a "
              "token typed here lands in your shell history. It is never printed or written to a card.")

endpoint_option = click.option("--endpoint", envvar="HF_ENDPOINT", show_envvar=True, metavar="URL",
                               help=ENDPOINT_HELP)
token_option = click.option("--token", metavar="TOKEN", default=None, help=TOKEN_HELP)


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repo-id", required=True, metavar="ORG/NAME",
              help="Hub model repo to publish to; created if it does not exist.")
@click.option("--tag", metavar="TAG",
              help="Tag the published commit (e.g. v1) so users can pin it with --revision TAG. "
                   "An existing tag is never moved.")
@click.option("--private", is_flag=True,
              help="Create the repo as private (no effect on a repo that already exists).")
@click.option("--path-in-repo", default="", metavar="SUB",
              help="Publish into subfolder SUB, so one repo holds a whole zoo, one labeler per "
                   "subfolder; load with `pull ORG/NAME --name SUB` / load_labeler(ORG/NAME, name=SUB). "
                   "Default: the repo root.")
@endpoint_option
@token_option
@click.option("--message", "-m", metavar="TEXT", help="Commit message (default: 'Publish labeler NAME ...').")
@friendly_errors
def publish(folder, repo_id, tag, private, path_in_repo, endpoint, token, message) -> None:
    """Publish the labeler folder FOLDER to a Hub repo as one commit and print the commit id.

    Nothing is sent unless FOLDER passes its own manifest (sha256 of every file) and its card
    (README.md) has valid YAML front matter. Exactly the manifest's files are uploaded;
    re-publishing an unchanged folder uploads nothing and makes no new commit.

    \b
    Self-hosted Hub: --endpoint URL or HF_ENDPOINT=URL. huggingface_hub uploads through
    Xet storage whenever hf_xet is installed; for a server without Xet also set
    HF_HUB_DISABLE_XET=1 (files then go through the LFS protocol).
    """
    from ..exporters.publish import publish_labeler

    result = publish_labeler(folder, repo_id, tag=tag, private=private, path_in_repo=path_in_repo,
                             endpoint=endpoint, token=token, commit_message=message)
    where = result.url + (f" ({result.path_in_repo}/)" if result.path_in_repo else "")
    if result.unchanged:
        click.echo(f"unchanged: {where} already holds these {result.files} files; nothing uploaded")
    else:
        click.echo(f"published {folder} -> {where}: {result.files} files in one commit")
    if result.tag:
        click.echo(f"tag {result.tag}")
    click.echo(f"commit {result.commit}")


@click.command()
@click.argument("repo_id", metavar="ORG/NAME")
@click.option("--revision", metavar="REV", help="Tag, branch or commit id to pin (default: main).")
@click.option("--name", metavar="SUB", help="Labeler subfolder of a zoo repo (see `flashdd-zoo ls ORG/NAME`).")
@endpoint_option
@click.option("--local-files-only", is_flag=True,
              help="Use the local Hugging Face cache only, no network (as HF_HUB_OFFLINE=1 does).")
@click.option("--force-download", is_flag=True,
              help="Fetch every file again even if cached (repairs a corrupted cache).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Hugging Face cache to use (default: $HF_HUB_CACHE, else $HF_HOME/hub, "
                   "else ~/.cache/huggingface/hub).")
@token_option
@friendly_errors
def pull(repo_id, revision, name, endpoint, local_files_only, force_download, cache_dir, token) -> None:
    """Download the labeler ORG/NAME into the Hugging Face cache and verify every file.

    Prints the labeler and, on the last line, its folder in the cache (what load_labeler and
    `flashdd-zoo info` read). Works offline from the cache with --local-files-only or
    HF_HUB_OFFLINE=1. For a self-hosted Hub pass --endpoint URL or set HF_ENDPOINT.
    """
    from ..loaders.hub import commit_of, pull_labeler

    folder, config = pull_labeler(repo_id, revision=revision, name=name, endpoint=endpoint, token=token,
                                  cache_dir=cache_dir, local_files_only=local_files_only,
                                  force_download=force_download)
    click.echo(f"{config.name} ({config.kind}) from {repo_id}@{revision or 'main'}, commit {commit_of(folder)}: "
               "manifest sha256 verified")
    click.echo(str(folder))


@click.command(name="ls")
@click.argument("where", metavar="ORG | ORG/ZOO")
@click.option("--revision", metavar="REV", help="For a zoo repo: tag, branch or commit (default: main).")
@endpoint_option
@token_option
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
@friendly_errors
def ls(where, revision, endpoint, token, as_json) -> None:
    """List the labelers published under organisation ORG, or held by the zoo repo ORG/ZOO.

    Dataset, IPC, kind, params, bytes and student top-1 come from each card's metadata.
    """
    from ..loaders.hub_index import list_labelers

    if revision and "/" not in where:
        raise click.UsageError("--revision applies to a zoo repo (ORG/ZOO), not to an organisation.")
    scope = {"repo_id": where, "revision": revision} if "/" in where else {"author": where}
    entries = list_labelers(**scope, endpoint=endpoint, token=token)
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in entries], indent=2))
        return
    if not entries:
        click.echo(f"no flashdd-zoo labelers found for {where}")
        return
    table = Table(title=f"flashdd-zoo labelers: {where}")
    for col in ("repo (--name)", "dataset", "IPC", "kind", "params", "bytes", "student top-1"):
        table.add_column(col, justify="right" if col in ("IPC", "params", "bytes", "student top-1") else "left")
    for e in entries:
        table.add_row(e.repo_id + (f" --name {e.name}" if e.name else ""), e.dataset or "?", _fmt(e.ipc),
                      e.kind or "?", _fmt(e.params, ","), _fmt(e.weights_bytes, ","), _fmt(e.student_top1, ".2f", "%"))
    console.print(table)


def _fmt(value, spec: str = "", unit: str = "") -> str:
    return "-" if value is None else format(value, spec) + unit
