"""Clinical model of the simulated cohort: demographics, headache variables and planted ALPS.

Every number here is a **simulation parameter**, not a finding. The structural model (per
participant; ``VM`` = 1 for vestibular migraine, 0 for migraine without aura, MO) is

.. code-block:: text

    duration  d ~ Gamma(mean μ_d[g], SD σ_d[g]), recorded to 0.1 y, floor 0.5 y       (MO, VM)
    frequency f = μ_f[g] + γ (d − μ_d[g]) + e_f,  e_f ~ N(0, σ_f²), recorded to 0.1, floor 0.5
    ALPS      A = α + β_s VM + β_d d + β_f f + e_A,  e_A ~ N(0, σ_A²)                  (patients)
              A = μ_HC + e_HC,  e_HC ~ N(0, σ_HC²)                                     (HC)
    L/R       A_L = A + δ/2, A_R = A − δ/2,  δ ~ N(0, σ_LR²)
    DHI       D = δ_0 + c' d + b A + e_D,  e_D ~ N(0, σ_D²), recorded 2·round(D/2) in [0, 100] (VM)

with the recorded (rounded) d and f entering the ALPS equation, so a regression of A on the
recorded variables has exactly this linear structure. Targets (what an ideal measurement should
show in expectation) and free design choices are in :class:`ClinicalModel`; the remaining
structural parameters are derived analytically by :meth:`ClinicalModel.derived`:

* ``α = m_MO − β_d μ_d[MO] − β_f μ_f[MO]``  (MO mean);
* ``μ_f[VM] = (m_VM − α − β_s − β_d μ_d[VM]) / β_f``  (VM mean; VM have more attacks);
* within VM the total duration slope is ``τ = β_d + β_f γ`` and
  ``Var(A|VM) = τ² σ_d[VM]² / ρ²`` for the target ``ρ = r(A, d | VM)``, so
  ``σ_A² = Var(A|VM) − τ² σ_d[VM]² − β_f² σ_f²``;
* DHI, standardised within VM (``b*``, ``c'*`` in SD units, ``π`` = proportion mediated,
  ``k = (1 − π)/π``): the indirect share ``ρ b* / (c'* + ρ b*) = π`` gives ``c'* = k ρ b*`` and
  ``r(A, D) = b* (1 + k ρ²)`` gives ``b* = r_AD / (1 + k ρ²)``;
  ``σ_D*² = 1 − (c'*² + b*² + 2 c'* b* ρ)``; raw units by ``SD_D``, ``SD(A|VM)``, ``σ_d[VM]``.

Age and sex have no effect on ALPS (null by design); age = onset age + duration for patients.
VAS and HIT-6 rise weakly with attack frequency; PSQI is higher in patients; none of them
enters the ALPS equation.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

GROUPS = ("MO", "VM", "HC")


@dataclass(frozen=True)
class ClinicalModel:
    """Targets and design choices of the clinical model (all simulation parameters)."""

    # --- targets (expected values for an ideal measurement) ---
    mean_mo: float = 1.60
    mean_hc: float = 1.51
    mean_vm: float = 1.43
    beta_subtype: float = -0.055        # VM vs MO, patients, adjusted for d and f
    beta_duration: float = -0.003       # per year
    beta_frequency: float = -0.053      # per attack/month
    r_alps_duration_vm: float = -0.71
    r_alps_dhi_vm: float = -0.56
    prop_mediated_vm: float = 0.80      # duration -> ALPS -> DHI, indirect / total
    # --- design choices ---
    female_prob: dict = field(default_factory=lambda: {"MO": 0.78, "VM": 0.80, "HC": 0.75})
    duration_mean: dict = field(default_factory=lambda: {"MO": 8.0, "VM": 12.0})
    duration_sd: dict = field(default_factory=lambda: {"MO": 6.0, "VM": 7.0})
    onset_age_min: float = 12.0          # onset = min + Gamma(shape, scale)
    onset_age_shape: float = 2.0
    onset_age_scale: float = 7.0
    hc_age_min: float = 20.0             # HC age = min + Gamma(shape, scale)
    hc_age_shape: float = 3.0
    hc_age_scale: float = 5.0
    freq_mean_mo: float = 5.0            # attacks/month
    freq_per_duration: float = 0.2       # γ, attacks/month per year of disease
    freq_resid_sd: float = 1.5           # σ_f
    hc_sd: float = 0.11                  # σ_HC
    asym_sd: float = 0.02                # σ_LR, SD of A_L − A_R
    dhi_mean: float = 40.0
    dhi_sd: float = 18.0
    vas_mean: float = 6.5
    vas_per_freq: float = 0.2
    vas_sd: float = 1.5
    hit6_mean: float = 60.0
    hit6_per_freq: float = 1.2
    hit6_sd: float = 6.0
    psqi_mean: dict = field(default_factory=lambda: {"MO": 8.0, "VM": 8.5, "HC": 4.5})
    psqi_sd: dict = field(default_factory=lambda: {"MO": 3.5, "VM": 3.5, "HC": 2.5})

    def derived(self) -> dict:
        """Structural parameters derived analytically from the targets (see module doc)."""
        bs, bd, bf = self.beta_subtype, self.beta_duration, self.beta_frequency
        mu_d_mo, mu_d_vm = self.duration_mean["MO"], self.duration_mean["VM"]
        sd_d_vm = self.duration_sd["VM"]
        alpha = self.mean_mo - bd * mu_d_mo - bf * self.freq_mean_mo
        freq_mean_vm = (self.mean_vm - alpha - bs - bd * mu_d_vm) / bf
        tau = bd + bf * self.freq_per_duration
        rho = self.r_alps_duration_vm
        var_a_vm = tau**2 * sd_d_vm**2 / rho**2
        var_e = var_a_vm - tau**2 * sd_d_vm**2 - bf**2 * self.freq_resid_sd**2
        if var_e <= 0:
            raise ValueError("targets infeasible: frequency variance alone exceeds the "
                             f"non-duration ALPS variance in VM (σ_A² = {var_e:.3g})")
        k = (1 - self.prop_mediated_vm) / self.prop_mediated_vm
        b_std = self.r_alps_dhi_vm / (1 + k * rho**2)
        c_std = k * rho * b_std
        var_dhi_e_std = 1 - (c_std**2 + b_std**2 + 2 * c_std * b_std * rho)
        sd_a_vm = math.sqrt(var_a_vm)
        b_raw = b_std * self.dhi_sd / sd_a_vm
        c_raw = c_std * self.dhi_sd / sd_d_vm
        return {
            "alpha": alpha,
            "freq_mean_vm": freq_mean_vm,
            "tau_vm": tau,
            "sd_alps_vm": sd_a_vm,
            "sigma_alps": math.sqrt(var_e),
            "dhi_b_std": b_std,
            "dhi_c_prime_std": c_std,
            "dhi_b": b_raw,
            "dhi_c_prime": c_raw,
            "dhi_intercept": self.dhi_mean - c_raw * mu_d_vm - b_raw * self.mean_vm,
            "dhi_sigma": math.sqrt(var_dhi_e_std) * self.dhi_sd,
            "r_duration_dhi_vm": c_std + b_std * rho,
        }

    def as_dict(self) -> dict:
        return {"targets_and_design": asdict(self), "derived": self.derived()}


def _gamma(rng, mean, sd, n):
    shape = (mean / sd) ** 2
    return rng.gamma(shape, sd**2 / mean, n)


def participant_ids(n_mo: int, n_vm: int, n_hc: int) -> list[str]:
    return ([f"sub-MO{i:03d}" for i in range(1, n_mo + 1)]
            + [f"sub-VM{i:03d}" for i in range(1, n_vm + 1)]
            + [f"sub-HC{i:03d}" for i in range(1, n_hc + 1)])


def simulate_clinical(rng, *, n_mo: int = 40, n_vm: int = 40, n_hc: int = 20,
                      model: ClinicalModel | None = None) -> pd.DataFrame:
    """Draw the clinical table (one row per participant, MO then VM then HC).

    Columns: ``participant_id, group, age, sex, duration_years, attacks_per_month, vas, hit6,
    psqi, dhi, planted_alps, planted_alps_L, planted_alps_R`` (missing = NA). The draw order
    (group by group, variable by variable as coded) is part of the model.
    """
    rng = np.random.default_rng(rng)
    m = model or ClinicalModel()
    dv = m.derived()
    frames = []
    for group, n in (("MO", n_mo), ("VM", n_vm), ("HC", n_hc)):
        if n < 0:
            raise ValueError(f"n_{group.lower()} must be ≥ 0, got {n}")
        if n == 0:
            continue
        sex = np.where(rng.random(n) < m.female_prob[group], "F", "M")
        df = pd.DataFrame({"group": group, "sex": sex})
        if group == "HC":
            age = np.floor(m.hc_age_min + rng.gamma(m.hc_age_shape, m.hc_age_scale, n))
            alps = m.mean_hc + rng.normal(0, m.hc_sd, n)
            df["age"] = age.astype(int)
            for col in ("duration_years", "attacks_per_month"):
                df[col] = np.nan
            for col in ("vas", "hit6", "dhi"):
                df[col] = pd.array([pd.NA] * n, dtype="Int64")
        else:
            vm = 1.0 if group == "VM" else 0.0
            mu_d, sd_d = m.duration_mean[group], m.duration_sd[group]
            mu_f = dv["freq_mean_vm"] if vm else m.freq_mean_mo
            d = np.maximum(np.round(_gamma(rng, mu_d, sd_d, n), 1), 0.5)
            f = mu_f + m.freq_per_duration * (d - mu_d) + rng.normal(0, m.freq_resid_sd, n)
            f = np.maximum(np.round(f, 1), 0.5)
            onset = m.onset_age_min + rng.gamma(m.onset_age_shape, m.onset_age_scale, n)
            alps = (dv["alpha"] + m.beta_subtype * vm + m.beta_duration * d
                    + m.beta_frequency * f + rng.normal(0, dv["sigma_alps"], n))
            vas = np.clip(np.rint(rng.normal(m.vas_mean + m.vas_per_freq * (f - 6.0), m.vas_sd)), 0, 10)
            hit6 = np.clip(np.rint(rng.normal(m.hit6_mean + m.hit6_per_freq * (f - 6.0), m.hit6_sd)),
                           36, 78)
            df["age"] = np.floor(onset + d).astype(int)
            df["duration_years"] = d
            df["attacks_per_month"] = f
            df["vas"] = pd.array(vas.astype(int), dtype="Int64")
            df["hit6"] = pd.array(hit6.astype(int), dtype="Int64")
            if vm:
                latent = (dv["dhi_intercept"] + dv["dhi_c_prime"] * d + dv["dhi_b"] * alps
                          + rng.normal(0, dv["dhi_sigma"], n))
                dhi = np.clip(2 * np.rint(latent / 2), 0, 100).astype(int)
                df["dhi"] = pd.array(dhi, dtype="Int64")
            else:
                df["dhi"] = pd.array([pd.NA] * n, dtype="Int64")
        psqi = np.clip(np.rint(rng.normal(m.psqi_mean[group], m.psqi_sd[group], n)), 0, 21)
        df["psqi"] = psqi.astype(int)
        delta = rng.normal(0, m.asym_sd, n)
        df["planted_alps"] = alps
        df["planted_alps_L"] = alps + delta / 2
        df["planted_alps_R"] = alps - delta / 2
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "participant_id", participant_ids(n_mo, n_vm, n_hc))
    cols = ["participant_id", "group", "age", "sex", "duration_years", "attacks_per_month",
            "vas", "hit6", "psqi", "dhi", "planted_alps", "planted_alps_L", "planted_alps_R"]
    return out[cols]
