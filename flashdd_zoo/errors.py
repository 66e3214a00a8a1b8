"""Errors a user can act on. Each message names the problem and the fix.

Catch FlashDDError for all of them. ArgumentError (also a ValueError) means the call itself was
wrong: an unknown option value, an impossible combination, images of the wrong shape. HubError
subclasses tell Hub failures apart by type, and each carries the same case as `reason`.
Warnings go out through `warn_user`, which points them at the caller's line.
"""

import os
import sys
import sysconfig
import warnings


class FlashDDError(Exception):
    """Base class; the CLI prints these without a traceback."""


class ArgumentError(FlashDDError, ValueError):
    """A function or command was called with a value it does not accept."""


class DataError(FlashDDError):
    """A dataset root, split, class folder or image is missing or malformed."""


class ArtifactError(FlashDDError):
    """A labeler folder is incomplete, tampered with, or of an unknown version."""


class ArtifactArgumentError(ArtifactError, ArgumentError):
    """A bad argument to a labeler loader or exporter (a backend, dtype, fast-path option or kind).

    Also an ArtifactError, as these were before ArgumentError existed, so code catching that keeps working.
    """


class ArtifactMismatchError(ArtifactError):
    """The files of a labeler folder disagree (config.json, the weights, the ONNX file), though each
    matches the manifest: the folder mixes exports, or a file was edited and the manifest rewritten."""


class ArtifactPathError(ArtifactError):
    """A manifest lists a path that leaves its labeler folder (.., an absolute path, a link leading out)."""


class InputError(ArgumentError):
    """Images handed to a labeler do not match what it was built for."""


class InputStatisticsWarning(UserWarning):
    """A labeler's first batch looks normalised differently from what it was told to expect."""


def _library_folders() -> tuple[str, ...]:
    """Where frames are not the user's line: this package, and the installed libraries a call passes
    through on its way in (torch's Module.__call__ for `labeler(x)`, a wrapper such as mutmut's)."""
    paths = sysconfig.get_paths()
    return tuple(os.path.join(p, "") for p in {os.path.dirname(os.path.abspath(__file__)), paths["purelib"], paths["platlib"]})


def warn_user(message: str, category: type[Warning]) -> None:
    """warnings.warn attributed to the first frame outside the package and installed libraries: the
    user's line, however deep the warning is raised (a fixed stacklevel fits one call path only)."""
    skip = _library_folders()
    frame, depth = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(skip):
        frame, depth = frame.f_back, depth + 1
    warnings.warn(message, category, stacklevel=depth + 1)


class ExportError(FlashDDError):
    """An export failed its own check (e.g. ONNX parity)."""


class RelabelStoreError(FlashDDError):
    """A relabel store (flashdd-zoo relabel) is incomplete, altered, or of an unknown format."""


class RelabelDistilledMismatch(RelabelStoreError):
    """A relabel store is replayed against another D_S than the one it labelled (per-image sha256)."""


class RelabelLabelerMismatch(RelabelStoreError):
    """A relabel store was written by another labeler than the one it is checked against."""


class HubError(FlashDDError):
    """A Hub repo, revision or cached copy cannot be reached or is not a labeler.

    Each subclass is one case; `reason` names it for code that prefers strings: "repo_not_found",
    "revision_not_found", "not_a_labeler", "offline_not_cached", "unreachable", "refused",
    "tag_conflict", "invalid_id".
    """

    reason = "hub"

    def __init__(self, message: str):
        super().__init__(message)


class HubRepoNotFound(HubError):
    reason = "repo_not_found"


class HubRevisionNotFound(HubError):
    reason = "revision_not_found"


class HubNotALabeler(HubError):
    reason = "not_a_labeler"


class HubOfflineNotCached(HubError):
    reason = "offline_not_cached"


class HubUnreachable(HubError):
    reason = "unreachable"


class HubRefused(HubError):
    """The Hub answered with an error (no access, gated repo, a server-side failure)."""

    reason = "refused"


class HubTagConflict(HubError):
    reason = "tag_conflict"


class HubInvalidId(HubError, ArgumentError):
    """A repo id, labeler name or path in the repo that is not a plain Hub path."""

    reason = "invalid_id"
