"""Imaging: from a loaded DWI to the ALPS index of one scan.

Pure functions on arrays and images, no file layout: pre-processing (:mod:`.preprocess`),
the tensor fit (:mod:`.dti`, :mod:`.tensor`), the gradient-table check (:mod:`.gradcheck`),
registration to MNI152 2009a (:mod:`.registration`, ANTs plumbing in :mod:`.ants`; templates in
:mod:`.template`), template ROIs (:mod:`.roi`, JHU labels in :mod:`.atlas`), ROI weights and
the index in template and scanner axes (:mod:`.measure`, :mod:`.index`), the per-scan noise
floor (:mod:`.noise`) and QC flags and image (:mod:`.qc`). Imports :mod:`alps.io` and
:mod:`alps.atomic` only.
"""
