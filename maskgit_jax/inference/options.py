"""Decode options and sample results: the vocabulary of the inference layer."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from maskgit_jax import guidance
from maskgit_jax import logit_filters
from maskgit_jax import masking
from maskgit_jax import parallel_decode
from maskgit_jax import remasking
from maskgit_jax import storage

CFG_SCHEDULES = guidance.CFG_SCHEDULES

# Old keyword -> the name ``decode``, the configs and the CLIs use. The old
# names are accepted (with a DeprecationWarning) for one release.
RENAMED = {"num_steps": "num_iter", "start_step": "start_iter"}


# Sampler options a saved ``config.decode`` may set beside the classic ones.
_CONFIG_EXTRAS = ("cfg_power", "order", "roll_order", "temperature_schedule",
                  "final_temperature", "top_k", "top_p", "sampler", "remask",
                  "remask_eta")


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
  """How tokens are decoded (paper Section 3.2).

  Attributes:
    num_iter: T, the number of decoding iterations.
    schedule: mask schedule name (:data:`maskgit_jax.masking.SCHEDULES`).
    choice_temperature: Gumbel temperature of the confidence ranking
      (official 4.5; 0 keeps the most confident tokens deterministically).
    temperature: sampling temperature of the token distribution.
    greedy: take the most likely token instead of sampling.
    cfg_scale: classifier-free guidance scale ``w`` in ``cond + w * (cond -
      uncond)``; 0 disables guidance (and its second forward pass).
      Libraries writing ``uncond + s * (cond - uncond)`` have ``s = w + 1``.
    cfg_schedule: how ``w`` varies over the steps
      (:mod:`maskgit_jax.guidance`): ``constant``; ``linear`` (with the
      share of tokens already decoded); ``step_linear`` (``w k / T``, MUSE);
      ``power_cosine`` (``w (1 - cos(pi (k / T) ** cfg_power)) / 2``, MDT,
      1d-tokenizer, MaskBit).
    cfg_power: the ``p`` of ``power_cosine`` (1d-tokenizer and MaskBit: 3).
    start_iter: first iteration to run (the official box edit starts at 2
      of 12).
    sampler: how tokens are drawn: ``"cdf"`` (one uniform number per
      token; the default) or ``"gumbel"`` (the official Gumbel-max, one
      number per token and code: the same distribution at 20-40% of a
      forward pass per step on CPU, see ``benchmarks/RESULTS.md``); see
      :func:`maskgit_jax.parallel_decode.sample_tokens`.
    order: which masked positions are kept at each step
      (:mod:`maskgit_jax.reveal_order`): ``confidence`` (official),
      ``halton`` (Halton-MaskGIT, ICLR 2025; pair it with the ``arccos``
      schedule as the reference does), ``random``, ``mdlm`` (the
      masked-diffusion posterior, revealing each token with the schedule's
      probability; :mod:`maskgit_jax.remasking`) or ``critic`` (Token-
      Critic, ECCV 2022: a trained critic re-masks the tokens that look
      sampled, accepted ones included; needs the Generator's ``critic``).
    roll_order: a random offset of the Halton order per sample (the
      reference's ``randomize=True``).
    temperature_schedule: ``constant`` (official) or ``linear`` from
      ``temperature`` to ``final_temperature`` (0: argmax at the last step,
      as lucidrains' MUSE) (:mod:`maskgit_jax.logit_filters`).
    final_temperature: the last step's temperature of ``linear``.
    top_k: sample among the ``top_k`` most likely codes (0: all; Taming).
    top_p: sample among the smallest set of codes with mass ``>= top_p``
      (1: all; nucleus sampling).
    remask: with ``order="mdlm"``, how decoded tokens return to the mask:
      ``none`` (MDLM), or ReMDM's ``cap``, ``rescale``, ``conf``.
    remask_eta: ReMDM's ``eta`` (its image runs: 0.05 at temperature 0.8).
  """

  num_iter: int = 8
  schedule: str = "cosine"
  choice_temperature: float = 4.5
  temperature: float = 1.0
  greedy: bool = False
  cfg_scale: float = 0.0
  cfg_schedule: str = "constant"
  start_iter: int = 0
  sampler: str = "cdf"
  cfg_power: float = 3.0
  order: str = "confidence"
  roll_order: bool = False
  temperature_schedule: str = "constant"
  final_temperature: float = 0.0
  top_k: int = 0
  top_p: float = 1.0
  remask: str = "none"
  remask_eta: float = 0.05

  @classmethod
  def from_config(cls, decode: dict, *, guided: bool) -> "DecodeOptions":
    """The defaults a saved ``decode`` config section asks for."""
    return cls(
        num_iter=int(decode.get("num_iter", 8)),
        schedule=decode.get("schedule", "cosine"),
        choice_temperature=float(decode.get("choice_temperature", 4.5)),
        temperature=float(decode.get("temperature", 1.0)),
        cfg_scale=float(decode.get("cfg_scale") or 0.0) if guided else 0.0,
        cfg_schedule=decode.get("cfg_schedule", "constant"),
        **{k: decode[k] for k in _CONFIG_EXTRAS if k in decode})

  def replace(self, **overrides) -> "DecodeOptions":
    """A validated copy with ``overrides`` (None values ignored).

    Raises:
      TypeError: for a keyword that is not an option.
      ValueError: for an option value out of range.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    for old, new in RENAMED.items():
      if old in overrides:
        warnings.warn(f"decode option {old!r} is renamed {new!r}; the old "
                      "name goes in the next release", DeprecationWarning,
                      stacklevel=3)
        overrides.setdefault(new, overrides.pop(old))
    unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
    if unknown:
      raise TypeError(f"unknown decode options {sorted(unknown)}; expected "
                      f"{[f.name for f in dataclasses.fields(self)]}")
    return dataclasses.replace(self, **overrides).validate()

  def validate(self) -> "DecodeOptions":
    """Returns self; raises ValueError naming the first bad option."""
    if (isinstance(self.num_iter, bool) or
        int(self.num_iter) != self.num_iter or self.num_iter < 1):
      raise ValueError(f"num_iter must be a positive integer, got "
                       f"{self.num_iter}")
    masking.validate_schedule(self.schedule)
    if not 0 <= self.start_iter < self.num_iter:
      raise ValueError(f"start_iter must lie in [0, num_iter={self.num_iter})"
                       f", got {self.start_iter}")
    if self.choice_temperature < 0:
      raise ValueError(f"choice_temperature must be >= 0, got "
                       f"{self.choice_temperature}")
    if not self.greedy and not self.temperature > 0:
      raise ValueError(f"temperature must be > 0 (or use greedy), got "
                       f"{self.temperature}")
    if self.cfg_schedule not in CFG_SCHEDULES:
      raise ValueError(f"cfg_schedule must be one of {CFG_SCHEDULES}, got "
                       f"{self.cfg_schedule!r}")
    if self.sampler not in parallel_decode.SAMPLERS:
      raise ValueError(f"sampler must be one of {parallel_decode.SAMPLERS}, "
                       f"got {self.sampler!r}")
    if self.order not in parallel_decode.ORDERS:
      raise ValueError(f"order must be one of {parallel_decode.ORDERS}, got "
                       f"{self.order!r}")
    if self.remask not in remasking.REMASK_STRATEGIES:
      raise ValueError(f"remask must be one of {remasking.REMASK_STRATEGIES}"
                       f", got {self.remask!r}")
    if self.remask != "none" and self.order != "mdlm":
      raise ValueError(f"remask={self.remask!r} needs order='mdlm', got "
                       f"{self.order!r}")
    if self.remask_eta < 0:
      raise ValueError(f"remask_eta must be >= 0, got {self.remask_eta}")
    if self.temperature_schedule not in logit_filters.TEMPERATURE_SCHEDULES:
      raise ValueError(f"temperature_schedule must be one of "
                       f"{logit_filters.TEMPERATURE_SCHEDULES}, got "
                       f"{self.temperature_schedule!r}")
    if self.final_temperature < 0:
      raise ValueError(f"final_temperature must be >= 0, got "
                       f"{self.final_temperature}")
    logit_filters.check_filters(self.top_k, self.top_p)
    return self

  def traced(self) -> dict:
    """The options a compiled decode takes as arguments, by name (changing
    them does not compile again); filters that are off are None."""
    return dict(start_iter=np.int32(self.start_iter),
                choice_temperature=np.float32(self.choice_temperature),
                temperature=np.float32(self.temperature),
                cfg_scale=np.float32(self.cfg_scale),
                cfg_power=np.float32(self.cfg_power),
                final_temperature=np.float32(self.final_temperature),
                top_k=np.int32(self.top_k) if self.top_k else None,
                top_p=np.float32(self.top_p) if self.top_p < 1 else None,
                remask_eta=np.float32(self.remask_eta))

  def static(self) -> tuple:
    """The options that select a compiled decode."""
    return (self.num_iter, self.schedule, self.greedy, self.cfg_scale != 0,
            self.cfg_schedule, self.sampler, self.order, self.roll_order,
            self.temperature_schedule, self.remask)


@dataclasses.dataclass(frozen=True)
class Samples:
  """Generated images with their tokens and labels.

  Attributes:
    images: uint8 ``[n, H, W, 3]``.
    tokens: int32 ``[n, h, w]``.
    labels: int32 ``[n]``.
    float_images: float32 ``[n, H, W, 3]``: the tokenizer's output, not
      clipped to [0, 1] (``images`` is it clipped and rounded).
  """

  images: np.ndarray
  tokens: np.ndarray
  labels: np.ndarray
  float_images: np.ndarray

  def take(self, index: np.ndarray) -> "Samples":
    """The samples at ``index`` (int ``[m]``)."""
    return Samples(images=self.images[index], tokens=self.tokens[index],
                   labels=self.labels[index],
                   float_images=self.float_images[index])

  def save_npz(self, path):
    """Writes ``images``, ``tokens`` and ``labels`` (the FID tools read
    it); ``path`` may be local or ``gs://``."""
    return storage.save_npz(path, dict(images=self.images, tokens=self.tokens,
                                       labels=self.labels))


def label_array(labels, num: int | None = None) -> np.ndarray:
  """int32 ``[n]`` from an int or a sequence; one label repeats to ``num``.

  Raises:
    ValueError: non-integer labels, or a count that does not match ``num``.
  """
  arr = np.asarray(labels)
  if arr.dtype.kind not in "iu" and arr.size:
    raise ValueError(f"labels must be integers, got {labels!r}")
  arr = arr.astype(np.int32).reshape(-1)
  if num is not None and arr.size == 1:
    arr = np.repeat(arr, num)
  if num is not None and arr.size != num:
    raise ValueError(f"got {arr.size} labels for {num} images")
  return arr
