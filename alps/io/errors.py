"""Input errors: raised with a message that names the offending file and the problem."""
from __future__ import annotations


class InputError(ValueError):
    """An input image or dataset is missing, malformed or unusable (the message names the file)."""


class GradientError(ValueError):
    """A gradient table is missing, malformed or inconsistent with its image."""
