"""User-facing errors: the CLI prints their message without a traceback."""


class MixFormerError(Exception):
    """Base of every error caused by the user's input, files or settings."""


class InputError(MixFormerError, ValueError):
    """Bad frames, boxes or frame sources."""


class CheckpointError(MixFormerError):
    """A checkpoint that is missing, unreadable or does not fit the model."""


class ConfigError(MixFormerError, ValueError):
    """An invalid or unknown configuration."""
