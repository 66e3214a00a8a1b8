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
