"""alps: open, reproducible DTI-ALPS analysis for clinical cohorts.

The DTI-ALPS index (diffusion tensor image analysis along the perivascular space; Taoka et al.
2017) is

.. math::

    \\mathrm{ALPS} = \\frac{\\operatorname{mean}(D_{xx,\\mathrm{proj}}, D_{xx,\\mathrm{assoc}})}
                          {\\operatorname{mean}(D_{yy,\\mathrm{proj}}, D_{zz,\\mathrm{assoc}})}

with projection-fibre ROIs in the superior corona radiata and association-fibre ROIs in the
superior longitudinal fasciculus at the level of the lateral-ventricle bodies; x = right-left,
y = anterior-posterior, z = inferior-superior.
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("alps")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
