"""Measured against planted ALPS on a simulated cohort (``alps_validation.csv``)."""
from __future__ import annotations

import numpy as np
import pandas as pd

#: (measured column, truth column, axes) pairs compared by :func:`validation_table`.
VALIDATION_PAIRS = [("alps", "alps", "template"), ("alps_L", "alps_L", "template"), ("alps_R", "alps_R", "template"),
                    ("alps_scanner", "alps", "scanner"), ("alps_scanner_L", "alps_L", "scanner"),
                    ("alps_scanner_R", "alps_R", "scanner")]
VALIDATION_COLUMNS = ["measure", "truth", "axes", "n", "pearson_r", "mean_bias", "sd_diff", "rmse", "slope",
                      "intercept"]


def validation_table(results, truth):
    """Measured vs true ALPS: n, Pearson r, mean bias (measured − truth), SD of differences,
    RMSE, OLS slope/intercept of measured on truth; only subjects with status 'ok'.

    ``truth`` is None or empty → a table with the columns and zero rows (nothing is invented).
    """
    if truth is None or len(truth) == 0:
        return pd.DataFrame(columns=VALIDATION_COLUMNS)
    res = results[results["status"] == "ok"] if "status" in results.columns else results
    m = res.merge(truth, on="participant_id", suffixes=("", "_truth"))
    rows = []
    for meas, tru, axes in VALIDATION_PAIRS:
        tcol = f"{tru}_truth" if f"{tru}_truth" in m.columns else tru
        if meas not in m.columns or tcol not in m.columns:
            continue
        x = m[tcol].to_numpy(float)
        y = m[meas].to_numpy(float)
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        n = int(len(x))
        d = y - x
        row = {"measure": meas, "truth": tru, "axes": axes, "n": n}
        if n >= 2:
            row["pearson_r"] = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else float("nan")
            slope, icpt = np.polyfit(x, y, 1) if x.std() > 0 else (float("nan"), float("nan"))
            row.update(mean_bias=float(d.mean()), sd_diff=float(d.std(ddof=1)),
                       rmse=float(np.sqrt((d ** 2).mean())), slope=float(slope), intercept=float(icpt))
        rows.append(row)
    return pd.DataFrame(rows, columns=VALIDATION_COLUMNS)
