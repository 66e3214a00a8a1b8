"""What publishing (exporters/publish.py) and pulling (loaders/hub.py, loaders/hub_index.py) share:
repo-id checks, the HfApi they talk through, Hub errors in plain words."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from .errors import (
    HubError,
    HubInvalidId,
    HubOfflineNotCached,
    HubRefused,
    HubRepoNotFound,
    HubRevisionNotFound,
    HubUnreachable,
)

LIBRARY = "flashdd-zoo"
# ORG/NAME as the Hub spells repo ids; "." and ".." are path parts, never names
_PART = r"(?!\.\.?(?:/|$))[A-Za-z0-9._-]{1,96}"
REPO_ID = re.compile(rf"^{_PART}/{_PART}$")
TOKEN_HINT = "set HF_TOKEN or run `hf auth login` with a token that has access"


def looks_like_repo_id(text: str) -> bool:
    return bool(REPO_ID.match(text)) and "--" not in text


def check_repo_id(repo_id: str) -> str:
    if not looks_like_repo_id(repo_id):
        raise HubInvalidId(
            f"{repo_id!r} is not a Hub repo id: expected ORG/NAME (letters, digits, '.', '_', '-'), "
            "e.g. flashdd/resnet18-imagenet1k-ipc10-pruned.")
    return repo_id


def endpoint_url(endpoint: str | None) -> str:
    return (endpoint or constants.ENDPOINT).rstrip("/")


def hub_api(endpoint: str | None = None, token: str | bool | None = None) -> HfApi:
    """An HfApi that names flashdd-zoo in its user agent; token None = HF_TOKEN or the saved login."""
    from . import __version__

    return HfApi(endpoint=endpoint, token=token, library_name=LIBRARY, library_version=__version__)


@contextmanager
def hub_errors(repo_id: str, revision: str | None = None, endpoint: str | None = None,
               loading: bool = False) -> Iterator[None]:
    """Turn huggingface_hub's exceptions into HubError messages that name the problem and the fix.

    `loading`: the repo id came through load_labeler, which looked for a local folder first."""
    where = endpoint_url(endpoint)
    rev = revision or "main"
    try:
        yield
    except GatedRepoError as e:
        raise HubRefused(f"{repo_id} on {where} is gated: accept its terms on the repo page, then "
                       f"{TOKEN_HINT}.") from e
    except RepositoryNotFoundError as e:
        local = " (and no local folder of that name)" if loading else ""
        raise HubRepoNotFound(
            f"no model repo {repo_id} on {where}{local}. Check the id; for a private repo {TOKEN_HINT}; "
            "for a self-hosted Hub pass --endpoint / endpoint= or set HF_ENDPOINT.") from e
    except RevisionNotFoundError as e:
        raise revision_not_found(repo_id, rev, where) from e
    except LocalEntryNotFoundError as e:
        raise _not_cached(repo_id, rev, where, e) from e
    except OfflineModeIsEnabled as e:
        raise HubOfflineNotCached(f"HF_HUB_OFFLINE=1 is set, so {repo_id} cannot be reached on {where}; "
                       "unset it to talk to the Hub.") from e
    except (httpx2.ConnectError, httpx2.TimeoutException) as e:
        raise HubUnreachable(f"cannot reach the Hub at {where} ({e}). Check the network, or point at "
                       "another Hub with --endpoint / HF_ENDPOINT.") from e
    except HfHubHTTPError as e:
        raise _refused(e, repo_id, where) from e


def revision_not_found(repo_id: str, rev: str, where: str, refs: str = "") -> HubError:
    known = f" (it has {refs})" if refs else ""
    return HubRevisionNotFound(f"{repo_id} on {where} has no branch, tag or commit {rev!r}{known}. Pick one of its "
                    f"tags or branches: HfApi().list_repo_refs({repo_id!r}) or the repo page lists them.")


def _not_cached(repo_id: str, rev: str, where: str, e: Exception) -> HubError:
    cause = e.__cause__
    if isinstance(cause, (httpx2.ConnectError, httpx2.TimeoutException)):
        return HubUnreachable(
            f"cannot reach the Hub at {where} and {repo_id}@{rev} is not in the local cache "
            f"({constants.HF_HUB_CACHE} unless HF_HOME/HF_HUB_CACHE say otherwise). Check the "
            "network or --endpoint / HF_ENDPOINT.")
    return HubOfflineNotCached(
        f"offline (HF_HUB_OFFLINE=1 or local_files_only=True) and {repo_id}@{rev} is not in the "
        f"local Hugging Face cache. Download it once while online (`flashdd-zoo pull {repo_id}"
        f"{'' if rev == 'main' else ' --revision ' + rev}`), or point HF_HOME / HF_HUB_CACHE at the "
        "cache that holds it.")


def _refused(e: HfHubHTTPError, repo_id: str, where: str) -> HubError:
    status = e.response.status_code if e.response is not None else None
    server_says = (e.server_message or str(e).strip().splitlines()[0]).strip()
    if status in (401, 403):
        return HubRefused(f"the Hub at {where} refused the request for {repo_id} ({status}: "
                        f"{server_says}). Publishing needs a write token: {TOKEN_HINT}.")
    return HubRefused(f"the Hub at {where} answered {status} for {repo_id}: {server_says}")
