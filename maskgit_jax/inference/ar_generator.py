"""The ARGenerator: a trained autoregressive prior (plus tokenizer) that samples.

The raster-order counterpart of :class:`~maskgit_jax.inference.generator.Generator`
for checkpoints of ``config.stage = "ar"`` (:func:`maskgit_jax.sampling.load`
returns one for them). Sample ``i`` uses ``fold_in(PRNGKey(seed), i)``;
each decode is one KV-cached program per batch shape
(:func:`maskgit_jax.decoding.ar_decode.decode`); temperature, top-k, top-p and the
guidance scale are traced.

Editing is what a raster-order model can do: regenerate the *end* of the
token sequence, i.e. complete the bottom of an image (:meth:`complete`, or
:meth:`inpaint` with a mask whose tokens are a raster suffix; another mask
is refused). Box edits, outpainting and panoramas need the bidirectional
MaskGIT and are offered by the Generator only.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import numpy as np

from maskgit_jax.decoding import ar_decode
from maskgit_jax.decoding import logit_filters
from maskgit_jax.runtime import restore
from maskgit_jax.runtime import storage
from maskgit_jax.inference import edit_tasks
from maskgit_jax.inference import token_images
from maskgit_jax.inference.options import Samples
from maskgit_jax.models import causal_transformer as causal_lib
from maskgit_jax.models import vqgan as vqgan_lib


@dataclasses.dataclass(frozen=True)
class ARSampleOptions:
  """How the prior samples each token.

  Attributes:
    temperature: divides the logits (1.0: the model's distribution, as
      Taming).
    top_k: keep the ``k`` most likely codes (Taming's filter); 0: off.
    top_p: keep the smallest set with mass >= ``p``; 1: off.
    cfg_scale: guidance ``w`` in ``cond + w (cond - uncond)`` (0: off; needs
      a prior trained with label dropout).
  """

  temperature: float = 1.0
  top_k: int = 0
  top_p: float = 1.0
  cfg_scale: float = 0.0

  @classmethod
  def from_config(cls, sampling: dict) -> "ARSampleOptions":
    """From a saved ``config.sampling``."""
    return cls(temperature=float(sampling.get("temperature", 1.0)),
               top_k=int(sampling.get("top_k", 0)),
               top_p=float(sampling.get("top_p", 1.0)),
               cfg_scale=float(sampling.get("cfg_scale", 0.0))).validate()

  def replace(self, **overrides) -> "ARSampleOptions":
    """A copy with ``overrides`` (None values ignored), validated."""
    unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
    if unknown:
      raise ValueError(f"unknown sampling option(s) {sorted(unknown)} for an "
                       "autoregressive prior; it takes temperature, top_k, "
                       "top_p and cfg_scale")
    kept = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(self, **kept).validate()

  def validate(self) -> "ARSampleOptions":
    if not self.temperature > 0:
      raise ValueError(f"temperature must be > 0, got {self.temperature}")
    logit_filters.check_filters(self.top_k, self.top_p)
    return self

  def static(self) -> tuple:
    """What selects a compiled program: guidance and the filters on."""
    return (self.cfg_scale != 0, self.top_k == 0, self.top_p >= 1)

  def traced(self) -> dict:
    """The program's arguments (a filter that is off: None)."""
    return dict(temperature=np.float32(self.temperature),
                top_k=np.int32(self.top_k) if self.top_k else None,
                top_p=np.float32(self.top_p) if self.top_p < 1 else None,
                cfg_scale=np.float32(self.cfg_scale))


class ARGenerator(token_images.TokenImages):
  """A trained autoregressive prior and its tokenizer, ready to sample."""

  def __init__(self, prior: causal_lib.CausalTransformer, prior_params,
               tokenizer: vqgan_lib.VQGAN, tokenizer_params, *,
               image_size: int, null_label: int | None = None,
               defaults: ARSampleOptions | None = None, batch_size: int = 64,
               devices: Sequence[jax.Device] | None = None):
    """As :class:`~maskgit_jax.inference.generator.Generator`'s (no
    precision or critic options); most users call :meth:`from_checkpoint`."""
    self.prior = prior
    self.defaults = (defaults or ARSampleOptions()).validate()
    super().__init__({"prior": prior_params, "tokenizer": tokenizer_params},
                     tokenizer, image_size=image_size,
                     num_classes=prior.num_classes, null_label=null_label,
                     batch_size=batch_size, devices=devices)
    if self.grid[0] * self.grid[1] != prior.num_tokens:
      raise ValueError(f"a {image_size}px image makes {self.grid} tokens but "
                       f"the prior has {prior.num_tokens} positions")

  @classmethod
  def from_checkpoint(cls, path: storage.PathLike, *, use_ema: bool = True,
                      step: int | None = None, **kwargs) -> "ARGenerator":
    """Loads an ``ar``-stage workdir (``batch_size``, ``devices`` as kwargs).

    Raises:
      FileNotFoundError: no checkpoint at ``path`` or at its tokenizer's.
      ValueError: the checkpoint is not an autoregressive prior's.
    """
    saved = restore.load_prior(path, step=step, use_ema=use_ema)
    return cls(saved.model, saved.params, saved.tokenizer,
               saved.tokenizer_params, image_size=saved.image_size,
               null_label=saved.null_label,
               defaults=ARSampleOptions.from_config(saved.decode), **kwargs)

  def _model(self):
    return self.prior

  def _closure(self) -> tuple:
    return (self.prior, self.tokenizer, self.null_label)

  def checked_options(self, **overrides) -> ARSampleOptions:
    """:meth:`options`, refusing guidance on a prior without a null class."""
    opts = self.options(**overrides)
    if opts.cfg_scale != 0 and self.null_label is None:
      raise ValueError("cfg_scale needs a prior trained with label dropout "
                       "(config.ar.label_dropout > 0)")
    return opts

  def sample(self, labels, *, seed: int = 0, progress=None,
             **options) -> Samples:
    """Samples with tokens; ``options``: :class:`ARSampleOptions` fields."""
    return self._sample_labels(self.check_labels(labels), seed,
                               self.checked_options(**options), progress)

  inpaint = edit_tasks.inpaint

  def complete(self, image, keep_rows: int, *, label=None, seed: int = 0,
               **options) -> np.ndarray:
    """Keeps the top ``keep_rows`` token rows and samples the rest.

    Args:
      image: uint8 ``[H, W, 3]`` or ``[n, H, W, 3]`` at the model's size.
      keep_rows: token rows kept, in ``[1, h)``.
      label, seed, **options: as in :meth:`inpaint`.
    """
    if not 1 <= keep_rows < self.grid[0]:
      raise ValueError(f"keep_rows must lie in [1, {self.grid[0]}) token "
                       f"rows, got {keep_rows}")
    mask = np.zeros((self.image_size, self.image_size), bool)
    mask[keep_rows * self.factor:] = True
    return self.inpaint(image, mask, label=label, seed=seed, **options)

  def _checked_sequences(self, sequences: np.ndarray) -> np.ndarray:
    ar_decode.check_prefix(sequences, self.layout.mask_id)
    return sequences

  def _decode_images(self, opts: ARSampleOptions, traced: dict, params,
                     sequences, keys):
    null_token = self.layout.codebook_size + (self.null_label or 0)

    def one(sequence, key):
      return ar_decode.decode(
          params["prior"], sequence[None], key, model=self.prior,
          guided=opts.cfg_scale != 0, null_token=null_token, **traced)[0]

    return self._render(params, jax.vmap(one)(sequences, keys))
