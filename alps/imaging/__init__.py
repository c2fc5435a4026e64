"""Imaging: from a loaded DWI to the ALPS index of one scan.

Pure functions on arrays and images, no file layout: pre-processing (:mod:`.preprocess`),
the tensor fit (:mod:`.dti`, :mod:`.tensor`), the gradient-table check (:mod:`.gradcheck`),
registration to MNI152 2009a (:mod:`.registration`, ANTs plumbing in :mod:`.ants`; templates in
:mod:`.template`), template ROIs (:mod:`.roi`, JHU labels in :mod:`.atlas`), ROI weights and
the index in template and scanner axes (:mod:`.measure`, :mod:`.index`), the per-scan noise
floor (:mod:`.noise`), QC flags and image (:mod:`.qc`), and susceptibility-distortion correction
(:mod:`.susceptibility`; fields from opposite phase encodings in :mod:`.pepolar`, from GRE field maps
in :mod:`.fieldmap`, per volume of two full reverse-PE series in :mod:`.volume_pairs`; splines in
:mod:`.bspline`). Imports :mod:`alps.io` and
:mod:`alps.atomic` only.
"""
