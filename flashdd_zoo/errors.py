"""Errors a user can act on. Each message names the problem and the fix."""


class FlashDDError(Exception):
    """Base class; the CLI prints these without a traceback."""


class DataError(FlashDDError):
    """A dataset root, split, class folder or image is missing or malformed."""


class ArtifactError(FlashDDError):
    """A labeler folder is incomplete, tampered with, or of an unknown version."""


class InputError(FlashDDError):
    """Images handed to a labeler do not match what it was built for."""


class ExportError(FlashDDError):
    """An export failed its own check (e.g. ONNX parity)."""


class HubError(FlashDDError):
    """A Hub repo, revision or cached copy cannot be reached or is not a labeler.

    `reason` tells the cases apart for code: "repo_not_found", "revision_not_found",
    "not_a_labeler", "offline_not_cached", "unreachable", "refused", "tag_conflict", "invalid_id".
    """

    def __init__(self, message: str, reason: str = "hub"):
        super().__init__(message)
        self.reason = reason
