"""Inputs: finding (:mod:`~alps.io.bids`), loading and validating (:mod:`~alps.io.dwi`,
:mod:`~alps.io.gradients`) diffusion scans, their field-map inputs and phase encoding
(:mod:`~alps.io.fmap`), and the cohort tables of the statistics
(:mod:`~alps.io.tables`). Every problem raises :class:`InputError` or :class:`GradientError`
with a message naming the file.

This layer imports nothing else of :mod:`alps` but :mod:`alps.atomic` (writing b-vectors).
"""
from .bids import SubjectInput, check_input_files, discover, input_hashes
from .dwi import DWI, check_affine, gradient_files_for, load_dwi, load_image
from .errors import GradientError, InputError
from .files import sha256

__all__ = ["InputError", "GradientError", "SubjectInput", "DWI", "discover", "load_dwi", "load_image",
           "check_input_files", "check_affine", "gradient_files_for", "input_hashes", "sha256"]
