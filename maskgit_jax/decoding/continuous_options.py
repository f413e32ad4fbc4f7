"""The decode options of a continuous-token model (MAR's diffusion head,
GIVT's mixture head), declared once like MaskGIT's
(:mod:`maskgit_jax.decoding.decode_options`).

The training previews (``config.sampling``), the
:class:`~maskgit_jax.inference.continuous_generator.ContinuousGenerator`'s
defaults and ``sample.py``'s flags for a continuous checkpoint all derive
from these fields. Every option is static: the head's temperature and
guidance live in the hashable draw (:mod:`maskgit_jax.models.
continuous_sampling`), so a new value compiles a new program (once per
value and shape).
"""

from __future__ import annotations

import dataclasses

from maskgit_jax.decoding import continuous_decode
from maskgit_jax.decoding.decode_options import OptionSet, option
from maskgit_jax.objectives import mvtm


def _positive(name: str, *, unset_ok: bool = False):
  """A check that ``name`` is > 0 (or None, where ``unset_ok``)."""
  def check(value):
    if value is None and unset_ok:
      return
    if value is None or not value > 0:
      raise ValueError(f"{name} must be > 0{' (or unset)' if unset_ok else ''}"
                       f", got {value}")
  return check


@dataclasses.dataclass(frozen=True)
class ContinuousOptions(OptionSet):
  """How continuous tokens are decoded (:func:`continuous_decode.decode`
  and the head's sampler)."""

  num_iter: int = option(16, "T, the number of decoding iterations",
                         static=True, minimum=1)
  schedule: str = option("cosine", "mask schedule: " + ", ".join(
      mvtm.SCHEDULES) + " or pow<k>", static=True,
                         check=mvtm.validate_schedule)
  order: str = option(
      "random", "reveal order: random (MAR) or density (GIVT: the "
      "candidates' log-density, mixture head only)", static=True,
      choices=continuous_decode.ORDERS)
  choice_temperature: float = option(
      0.0, "Gumbel scale on the density order (0: deterministic)",
      static=True, minimum=0.0)
  temperature: float = option(
      1.0, "the head's temperature (MAR's tau on the diffusion noise; the "
      "mixture's spread)", static=True, check=_positive("temperature"))
  steps: int = option(100, "diffusion head: sampler steps (respaced)",
                      static=True, minimum=1)
  cfg_scale: float = option(
      0.0, "diffusion head: guidance w in eps_c + w (eps_c - eps_u); 0: off",
      static=True, off=0.0)
  clip_x0: float | None = option(
      None, "diffusion head: clip the predicted clean token to [-c, c] "
      "(unset: no clip)", static=True,
      check=_positive("clip_x0", unset_ok=True))


def config_section(**overrides):
  """A ``config.sampling`` section with every option (defaults updated by
  ``overrides``), so ``--config.sampling.<option>`` always works."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  options = ContinuousOptions().replace(**overrides)
  values = dataclasses.asdict(options)
  if values["clip_x0"] is None:
    values["clip_x0"] = ml_collections.config_dict.placeholder(float)
  return ml_collections.ConfigDict(values)
