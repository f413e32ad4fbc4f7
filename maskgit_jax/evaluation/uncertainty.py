"""Error bars for the studies: one helper, used by every study page.

What a number's uncertainty is depends on what the claim is about:

* a **sampler or decode setting** of one trained model: sampling seeds are
  the unit; the same seeds and labels for every setting make the
  comparison *paired* (:func:`difference` with ``paired=True``);
* a **method** (an architecture, a training recipe, MaskGIT against the
  prior): training seeds are the unit (:func:`over_seeds`), arms trained
  apart are compared *unpaired* (Welch, :func:`difference`);
* one **accuracy** from ``n`` judged samples has at least the binomial
  noise ``sqrt(p (1 - p) / n)`` (:func:`binomial`); a spread over 3 seeds can
  come out below it by chance, so :func:`over_seeds` takes that floor.

Every interval is two-sided at ``confidence`` (0.95); a difference whose
interval holds 0 is "not resolved" (:func:`verdict`), whatever its mean.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class Estimate:
  """A mean with its standard error and interval.

  ``n`` counts the units behind it (seeds, or samples for a binomial);
  ``se``, ``low`` and ``high`` are NaN when one unit gives no spread.
  """

  mean: float
  se: float
  low: float
  high: float
  n: int

  def excludes(self, value: float = 0.0) -> bool:
    """Whether the interval lies wholly on one side of ``value``."""
    return bool(self.low > value or self.high < value)

  def format(self, digits: int = 3) -> str:
    """``"0.912 ± 0.008"`` (mean ± standard error), or the mean alone."""
    if math.isnan(self.se):
      return f"{self.mean:.{digits}f}"
    return f"{self.mean:.{digits}f} ± {self.se:.{digits}f}"

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


def _check_confidence(confidence: float) -> None:
  if not 0.0 < confidence < 1.0:
    raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def _t_estimate(mean: float, se: float, dof: float, n: int,
                confidence: float) -> Estimate:
  if not (dof > 0 and np.isfinite(se)):
    return Estimate(mean, math.nan, math.nan, math.nan, n)
  half = float(stats.t.ppf(0.5 + confidence / 2, dof)) * se
  return Estimate(mean, se, mean - half, mean + half, n)


def binomial(accuracy: float, n: int, confidence: float = CONFIDENCE
             ) -> Estimate:
  """A share ``accuracy`` of ``n`` trials: standard error
  ``sqrt(p (1 - p) / n)`` and the Wilson score interval (inside [0, 1],
  honest near 0 and 1 where the normal interval is not)."""
  _check_confidence(confidence)
  if n < 1 or not 0.0 <= accuracy <= 1.0:
    raise ValueError(f"binomial needs n >= 1 and an accuracy in [0, 1], got "
                     f"n={n}, accuracy={accuracy}")
  z = float(stats.norm.ppf(0.5 + confidence / 2))
  centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
  half = z / (1 + z * z / n) * math.sqrt(
      accuracy * (1 - accuracy) / n + z * z / (4 * n * n))
  return Estimate(float(accuracy), math.sqrt(accuracy * (1 - accuracy) / n),
                  centre - half, centre + half, n)


def over_seeds(values: Sequence[float], *, floor_se: float = 0.0,
               confidence: float = CONFIDENCE) -> Estimate:
  """The mean over seeds with a t interval (``n - 1`` degrees of freedom).

  Args:
    values: one number per seed ``[n]``.
    floor_se: the least standard error the mean can have (e.g. the
      binomial noise of the pooled samples, :func:`accuracy_over_seeds`);
      the seed spread is used when larger.
    confidence: of the interval.

  Returns:
    An :class:`Estimate`; with one seed its spread is NaN.
  """
  _check_confidence(confidence)
  values = np.asarray(values, np.float64).reshape(-1)
  if not values.size or not np.isfinite(values).all():
    raise ValueError(f"over_seeds needs finite values, got {values.tolist()}")
  n = values.size
  if n == 1:
    return Estimate(float(values[0]), math.nan, math.nan, math.nan, 1)
  se = max(float(values.std(ddof=1)) / math.sqrt(n), floor_se)
  return _t_estimate(float(values.mean()), se, n - 1, n, confidence)


def accuracy_over_seeds(accuracies: Sequence[float], samples_per_seed: int,
                        confidence: float = CONFIDENCE) -> Estimate:
  """Class accuracy over seeds, each judged on ``samples_per_seed``
  samples: :func:`over_seeds` with the pooled binomial error as its floor."""
  accuracies = np.asarray(accuracies, np.float64).reshape(-1)
  floor = binomial(float(np.clip(accuracies.mean(), 0, 1)),
                   samples_per_seed * accuracies.size).se
  return over_seeds(accuracies, floor_se=floor, confidence=confidence)


def difference(a: Sequence[float], b: Sequence[float], *, paired: bool,
               confidence: float = CONFIDENCE) -> Estimate:
  """``mean(a) - mean(b)`` with its interval.

  Args:
    a, b: one number per seed for each arm.
    paired: True when ``a[i]`` and ``b[i]`` share seed ``i`` and its labels
      (sampling seeds of two settings): a t interval on the differences.
      False for arms trained apart (training seeds): Welch's interval.
    confidence: of the interval.

  Returns:
    An :class:`Estimate` of the difference (``n``: pairs, or ``len(a) +
    len(b)``).
  """
  _check_confidence(confidence)
  a = np.asarray(a, np.float64).reshape(-1)
  b = np.asarray(b, np.float64).reshape(-1)
  if not (np.isfinite(a).all() and np.isfinite(b).all()) or not (
      a.size and b.size):
    raise ValueError("difference needs finite values in both arms, got "
                     f"{a.tolist()} and {b.tolist()}")
  if paired:
    if a.size != b.size:
      raise ValueError(f"paired arms need one value per shared seed, got "
                       f"{a.size} and {b.size}")
    d = a - b
    if d.size == 1:
      return Estimate(float(d[0]), math.nan, math.nan, math.nan, 1)
    return _t_estimate(float(d.mean()), float(d.std(ddof=1)) /
                       math.sqrt(d.size), d.size - 1, d.size, confidence)
  if a.size < 2 or b.size < 2:
    return Estimate(float(a.mean() - b.mean()), math.nan, math.nan, math.nan,
                    a.size + b.size)
  va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
  se = math.sqrt(va + vb)
  if se == 0.0:
    dof = float(a.size + b.size - 2)
  else:  # Welch-Satterthwaite
    dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
  return _t_estimate(float(a.mean() - b.mean()), se, dof, a.size + b.size,
                     confidence)


def verdict(diff: Estimate, names: tuple[str, str], *,
            higher_is_better: bool) -> str:
  """One line: which arm the difference ``names[0] - names[1]`` favours,
  or that the interval holds 0 (or that there is no spread to tell)."""
  if math.isnan(diff.se):
    return "not resolved (one seed: no spread)"
  if not diff.excludes(0.0):
    return (f"not resolved (difference {diff.mean:+.3g}, interval "
            f"[{diff.low:.3g}, {diff.high:.3g}] holds 0)")
  first_better = (diff.mean > 0) == higher_is_better
  return (f"{names[0] if first_better else names[1]} better (difference "
          f"{diff.mean:+.3g}, interval [{diff.low:.3g}, {diff.high:.3g}])")
