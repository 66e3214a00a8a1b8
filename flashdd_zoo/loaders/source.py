"""Where an artifact is loaded from: a local folder or a Hub repo id (one rule for every artifact)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ArtifactArgumentError
from ..hub import looks_like_repo_id


def local_or_repo(path_or_repo: str | Path, name: str | None, hub: dict, what: str, hint: str = "") -> Path | str:
    """The local folder to read (an existing directory, or any `Path`, always wins; `name` picks one
    artifact of a zoo folder), else the Hub repo id. Hub options given with a local folder, and a source
    that is neither, are refused."""
    local = Path(path_or_repo)
    if isinstance(path_or_repo, Path) or local.is_dir():
        given = sorted(k for k, v in hub.items() if v not in (None, False))
        if given:
            raise ArtifactArgumentError(f"{', '.join(given)} only apply to Hub repo ids; {local} is a local folder.")
        return local / name if name else local
    if looks_like_repo_id(str(path_or_repo)):
        return str(path_or_repo)
    raise ArtifactArgumentError(f"{str(path_or_repo)!r} is neither a {what} on this machine nor a Hub repo id "
                                f"(ORG/NAME).{hint}")
