"""The decode options: one definition, one set of defaults.

Every knob of MaskGIT's parallel decode is a field of :class:`DecodeOptions`,
declared once with its default, whether it selects a compiled program
(``static``) or is an argument of it (traced), its allowed values and its
help text. Everything else derives from the fields: :func:`parallel_decode.
decode`'s keywords, the Generator's defaults (:meth:`DecodeOptions.
from_config` of a checkpoint's ``config.decode``), the training previews
(the same), the presets' ``config.decode`` sections (:func:`config_section`)
and ``sample.py``'s flags. Adding an option means: its field here, its use
in the decode loop, a test (``docs/layout.md`` shows a worked example).

The defaults are the official implementation's (the parity fixtures decode
with them); presets may choose others in their ``config.decode`` (ours use
``sampler="cdf"``, the same distribution from fewer random numbers).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from maskgit_jax.decoding import guidance
from maskgit_jax.decoding import logit_filters
from maskgit_jax.objectives import mvtm
from maskgit_jax.decoding import remasking
from maskgit_jax.decoding import reveal_order

SAMPLERS = ("gumbel", "cdf")
"""Token samplers: official Gumbel-max, or inverse-CDF (one uniform per token)."""

ORDERS = reveal_order.ORDERS + ("mdlm", "critic")
"""Reveal policies: the confidence and fixed orders, the masked-diffusion
posterior (:mod:`maskgit_jax.decoding.remasking`) and a token critic's choice."""


def option(default, help_text: str, *, static: bool, choices=None,
            minimum=None, off=None, check=None):
  """A field of an :class:`OptionSet` (:class:`DecodeOptions`,
  ``ContinuousOptions``).

  Args:
    default: the official value.
    help_text: one line for docs and ``--help``.
    static: the value selects a compiled program (else: traced argument).
    choices: the allowed values of a string option.
    minimum: the smallest allowed value of a number.
    off: the value that switches a traced filter off (passed as None).
    check: a function that raises ValueError for a bad value.
  """
  return dataclasses.field(default=default, metadata=dict(
      help=help_text, static=static, choices=choices, minimum=minimum,
      off=off, check=check))


class OptionSet:
  """What an options dataclass of :func:`option` fields derives from them:
  construction from a config section, validated copies, and the split into
  static values (which select a compiled program) and traced ones (its
  arguments). :class:`DecodeOptions` (MaskGIT) and
  :class:`~maskgit_jax.decoding.continuous_options.ContinuousOptions` are
  the two; a subclass adds cross-field checks in ``_validate_together``."""

  @classmethod
  def fields(cls) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(cls)

  @classmethod
  def from_config(cls, decode: dict | None, *, guided: bool = True
                  ) -> "OptionSet":
    """The options a saved ``config.decode`` section asks for (fields it
    lacks keep their defaults; guidance only for a ``guided`` model)."""
    names = {f.name for f in cls.fields()}
    values = {k: v for k, v in dict(decode or {}).items()
              if k in names and v is not None}
    if not guided:
      values["cfg_scale"] = 0.0
    return cls(**values).validate()

  def replace(self, **overrides) -> "OptionSet":
    """A validated copy with ``overrides`` (None values ignored).

    Raises:
      TypeError: a keyword that is not an option.
      ValueError: a value out of range.
    """
    return self.with_values(**overrides).validate()

  def with_values(self, **overrides) -> "OptionSet":
    """A copy with ``overrides`` (None ignored), not validated: traced
    values (inside ``jit``) are allowed."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - {f.name for f in self.fields()}
    if unknown:
      raise TypeError(f"unknown decode options {sorted(unknown)}; expected "
                      f"{[f.name for f in self.fields()]}")
    return dataclasses.replace(self, **overrides)

  def validate(self) -> "OptionSet":
    """Returns self; raises ValueError naming the first bad option (traced
    values are skipped)."""
    for f in self.fields():
      value, meta = getattr(self, f.name), f.metadata
      if isinstance(value, jax.core.Tracer):
        continue
      if meta["choices"] is not None and value not in meta["choices"]:
        raise ValueError(f"{f.name} must be one of {meta['choices']}, got "
                         f"{value!r}")
      if meta["check"] is not None:
        meta["check"](value)
      if f.type == "int" and meta["minimum"] == 1 and (
          isinstance(value, bool) or int(value) != value or value < 1):
        raise ValueError(f"{f.name} must be a positive integer, got {value}")
      if f.type == "int" and (isinstance(value, bool) or
                              int(value) != value):
        raise ValueError(f"{f.name} must be an integer, got {value}")
      if meta["minimum"] is not None and value < meta["minimum"]:
        raise ValueError(f"{f.name} must be >= {meta['minimum']}, got "
                         f"{value}")
    return self._validate_together()

  def static(self) -> tuple:
    """The values that select a compiled program (with :attr:`guided`)."""
    return tuple(getattr(self, f.name) for f in self.fields()
                 if f.metadata["static"]) + (self.guided,)

  def split(self) -> tuple["OptionSet", dict[str, Any]]:
    """``(static, traced)``: these options with every traced field at its
    default (hashable: it selects a compiled program), and the traced
    values by name, None for a filter that is off (a program's arguments;
    values may be traced already)."""
    traced_fields = [f for f in self.fields() if not f.metadata["static"]]
    static = dataclasses.replace(self, **{f.name: f.default
                                          for f in traced_fields})
    return static, {f.name: (getattr(self, f.name) if self.filter_on(f.name)
                             else None) for f in traced_fields}

  def traced(self) -> dict[str, Any]:
    """:meth:`split`'s traced values as numpy scalars (arguments of a
    compiled program from the host)."""
    types = {f.name: f.type for f in self.fields()}
    return {name: None if value is None else
            (np.int32(value) if types[name] == "int" else np.float32(value))
            for name, value in self.split()[1].items()}

  def with_traced(self, traced: dict[str, Any]) -> "OptionSet":
    """These options with ``traced`` (:meth:`traced`'s dict, inside a
    program) in place of the traced fields; None keeps a filter off."""
    return dataclasses.replace(self, **{
        name: (self._off(name) if value is None else value)
        for name, value in traced.items()})

  def _off(self, name: str):
    return next(f.metadata["off"] for f in self.fields() if f.name == name)

  def filter_on(self, name: str) -> bool:
    """Whether option ``name`` is on: always, unless it has an ``off``
    value (top_k, top_p, cfg_scale) and holds it. A traced value counts as
    on (:meth:`traced` passes None for off)."""
    value, off = getattr(self, name), self._off(name)
    return (off is None or isinstance(value, jax.core.Tracer)
            or value != off)

  def _validate_together(self):
    return self

  @property
  def guided(self) -> bool:
    """Whether guidance is on (a second, unconditional forward pass)."""
    return self.filter_on("cfg_scale")


@dataclasses.dataclass(frozen=True)
class DecodeOptions(OptionSet):
  """How tokens are decoded (paper Section 3.2); see each field's help.

  Guidance ``cfg_*`` applies where the Generator (or a preview) wraps the
  model in :class:`maskgit_jax.decoding.guidance.GuidedLogits`; ``decode`` itself
  sees only the logits.
  """

  num_iter: int = option(8, "T, the number of decoding iterations",
                          static=True, minimum=1)
  schedule: str = option(
      "cosine", "mask schedule: " + ", ".join(mvtm.SCHEDULES) + " or "
      "pow<k>", static=True, check=mvtm.validate_schedule)
  greedy: bool = option(False, "take the most likely token instead of "
                         "sampling", static=True)
  sampler: str = option(
      "gumbel", "token draw: gumbel (official, one number per token and "
      "code) or cdf (the same distribution, one number per token)",
      static=True, choices=SAMPLERS)
  order: str = option(
      "confidence", "reveal policy: confidence (official), halton, random, "
      "mdlm (masked-diffusion posterior) or critic (Token-Critic)",
      static=True, choices=ORDERS)
  roll_order: bool = option(False, "roll the Halton order by a random "
                             "offset per sample", static=True)
  temperature_schedule: str = option(
      "constant", "constant, or linear from temperature to "
      "final_temperature", static=True,
      choices=logit_filters.TEMPERATURE_SCHEDULES)
  remask: str = option(
      "none", "with order=mdlm: none (MDLM) or ReMDM's cap, rescale, conf",
      static=True, choices=remasking.REMASK_STRATEGIES)
  cfg_schedule: str = option(
      "constant", "guidance over the steps (maskgit_jax.decoding.guidance)",
      static=True, choices=guidance.CFG_SCHEDULES)
  unroll: bool = option(False, "unroll the T iterations (for "
                         "accelerators; bit-identical)", static=True)
  start_iter: int = option(0, "first iteration to run (the official box "
                            "edit starts at 2 of 12)", static=False,
                            minimum=0)
  choice_temperature: float = option(
      4.5, "Gumbel temperature of the confidence ranking (0: "
      "deterministic)", static=False, minimum=0.0)
  temperature: float = option(1.0, "sampling temperature of the tokens",
                               static=False)
  final_temperature: float = option(
      0.0, "the last step's temperature of temperature_schedule=linear (0: "
      "argmax)", static=False, minimum=0.0)
  top_k: int = option(0, "sample among the top_k most likely codes (0: "
                       "all)", static=False, off=0,
                       check=lambda v: logit_filters.check_filters(v, 1.0))
  top_p: float = option(1.0, "sample among the smallest set of codes with "
                         "mass >= top_p (1: all)", static=False, off=1.0,
                         check=lambda v: logit_filters.check_filters(0, v))
  min_p: float = option(0.0, "sample among the codes with probability >= "
                         "min_p times the most likely one's (0: all)",
                         static=False, off=0.0, minimum=0.0)
  remask_eta: float = option(0.05, "ReMDM's eta", static=False,
                              minimum=0.0)
  cfg_scale: float = option(
      0.0, "classifier-free guidance w in cond + w (cond - uncond); 0: off",
      static=False, off=0.0)
  cfg_power: float = option(3.0, "the p of cfg_schedule=power_cosine",
                             static=False)

  def _validate_together(self) -> "DecodeOptions":
    concrete = lambda v: not isinstance(v, jax.core.Tracer)  # pylint: disable=unnecessary-lambda-assignment
    if concrete(self.start_iter) and not self.start_iter < self.num_iter:
      raise ValueError(f"start_iter must lie in [0, num_iter={self.num_iter})"
                       f", got {self.start_iter}")
    if (not self.greedy and concrete(self.temperature)
        and not self.temperature > 0):
      raise ValueError(f"temperature must be > 0 (or use greedy), got "
                       f"{self.temperature}")
    if self.remask != "none" and self.order != "mdlm":
      raise ValueError(f"remask={self.remask!r} needs order='mdlm', got "
                       f"{self.order!r}")
    return self


def config_section(**overrides):
  """An ``ml_collections`` ``config.decode`` with every option (defaults
  updated by ``overrides``), so ``--config.decode.<option>`` always works."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  options = DecodeOptions().replace(**overrides)
  return ml_collections.ConfigDict(dataclasses.asdict(options))
