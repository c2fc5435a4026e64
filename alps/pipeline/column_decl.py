"""The :class:`Column` declaration of :mod:`alps.pipeline.columns` (the registry), apart so that the
registry's sections in other modules (:mod:`alps.pipeline.columns_corrections`) can use it."""
from __future__ import annotations

from dataclasses import dataclass

from ..imaging.roi import ROI_NAMES

__all__ = ["Column", "ROI_WORDS", "BOOL"]

#: how each ROI is named in the descriptions ({roi} in a column's name).
ROI_WORDS = {"proj_L": "left projection-fibre ROI (superior corona radiata; proj_L)",
             "proj_R": "right projection-fibre ROI (superior corona radiata; proj_R)",
             "assoc_L": "left association-fibre ROI (superior longitudinal fasciculus; assoc_L)",
             "assoc_R": "right association-fibre ROI (superior longitudinal fasciculus; assoc_R)"}


@dataclass(frozen=True)
class Column:
    """One column (or, with ``{roi}`` in ``name``, one column per ROI of :data:`ROI_NAMES`)."""

    name: str
    description: str
    stage: str           # discovery | metadata | preprocess | measure | uncertainty | run | tables
    source: str          # the function that computes it
    units: str = ""
    long_name: str = ""
    levels: tuple = ()   # ((value, meaning), ...) of a categorical column

    def names(self) -> list[str]:
        """The concrete column names (per ROI when the name holds ``{roi}``)."""
        return [self.name.format(roi=r) for r in ROI_NAMES] if "{roi}" in self.name else [self.name]

    def entry(self, name: str) -> dict:
        """BIDS data-dictionary entry of the concrete column ``name``."""
        roi = next((r for r in ROI_NAMES if "{roi}" in self.name and self.name.format(roi=r) == name), None)
        text = self.description.format(roi=ROI_WORDS[roi]) if roi else self.description
        out = {"LongName": self.long_name.format(roi=roi) if roi else self.long_name} if self.long_name else {}
        out["Description"] = text
        if self.levels:
            out["Levels"] = dict(self.levels)
        if self.units:
            out["Units"] = self.units
        return out


#: levels of a yes/no column
BOOL = (("True", "yes"), ("False", "no"))
