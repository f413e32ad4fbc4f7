"""The ContinuousGenerator: masked generation over a VAE's continuous latents.

A ``continuous``-stage checkpoint (MAR's diffusion head or GIVT's mixture
head on :class:`~maskgit_jax.models.continuous_transformer.
ContinuousTransformer`) and its VAE, with the discrete Generator's interface:
``generate``/``sample``, ``inpaint``, ``edit``, ``outpaint``, ``panorama``.
Sample ``i`` draws from ``fold_in(PRNGKey(seed), i)`` whatever the batch
(:func:`~maskgit_jax.decoding.continuous_decode.decode_rows`); each decode
is compiled once per (batch shape, options).

Latents: the VAE's posterior means times the checkpoint's
``latent_scale`` are what the model sees; ``Samples.tokens`` holds them,
float32 ``[n, h, w, C]``.
"""

from __future__ import annotations

from typing import Sequence

import jax
import numpy as np

from maskgit_jax.data import imageio
from maskgit_jax.decoding import continuous_decode
from maskgit_jax.decoding.continuous_options import ContinuousOptions
from maskgit_jax.decoding.parallel_decode import row_keys
from maskgit_jax.inference import edit_tasks
from maskgit_jax.inference import token_images
from maskgit_jax.inference.options import Samples
from maskgit_jax.models import continuous_sampling
from maskgit_jax.models import continuous_transformer as continuous_lib
from maskgit_jax.models import vqgan as vqgan_lib
from maskgit_jax.runtime import restore
from maskgit_jax.runtime import storage


class ContinuousGenerator(token_images.TokenImages):
  """A trained continuous-token model and its VAE, ready to sample and edit."""

  edit_defaults: dict = {}
  """:meth:`edit`'s options where a call leaves them out: the checkpoint's
  (MAR has no official edit recipe)."""

  def __init__(self, model: continuous_lib.ContinuousTransformer, params,
               head, tokenizer: vqgan_lib.VQGAN, tokenizer_params, *,
               image_size: int, latent_scale: float, num_levels: int = 1000,
               null_label: int | None = None,
               defaults: ContinuousOptions | None = None,
               batch_size: int = 64,
               devices: Sequence[jax.Device] | None = None):
    """Wraps models and params; most users call :meth:`from_checkpoint`.

    Args:
      model, params: the body and ``{"body": ..., "head": ...}``.
      head: the head module (``continuous_heads.make_head``).
      tokenizer, tokenizer_params: the VAE (``quantizer_type="kl"``).
      image_size: the side of the generated images.
      latent_scale: what the VAE's latents were multiplied by in training.
      num_levels: the diffusion head's training levels.
      null_label: the null class of a model trained with label dropout.
      defaults: decode options where a call leaves them out.
      batch_size, devices: as for the discrete Generator.
    """
    if not tokenizer.continuous or tokenizer.embedding_dim != model.channels:
      raise ValueError(
          f"the tokenizer ({tokenizer.quantizer_type!r}, "
          f"{tokenizer.embedding_dim} channels) must be a VAE with the "
          f"model's {model.channels} channels")
    if not latent_scale > 0:
      raise ValueError(f"latent_scale must be > 0, got {latent_scale}")
    self.model, self.head = model, head
    self.num_levels, self.latent_scale = int(num_levels), float(latent_scale)
    super().__init__({"model": params, "tokenizer": tokenizer_params},
                     tokenizer, image_size=image_size,
                     num_classes=model.num_classes, null_label=null_label,
                     batch_size=batch_size, devices=devices)
    self.defaults = (defaults or ContinuousOptions()).validate()
    self.checked_options()  # the defaults suit this model
    if self.grid[0] * self.grid[1] != model.num_tokens:
      raise ValueError(
          f"a {image_size}px image makes {self.grid[0]}x{self.grid[1]} "
          f"tokens but the model has {model.num_tokens} positions")

  @classmethod
  def from_checkpoint(cls, path: storage.PathLike, *, use_ema: bool = True,
                      step: int | None = None,
                      **kwargs) -> "ContinuousGenerator":
    """Loads a ``continuous``-stage workdir (``kwargs``: ``batch_size``,
    ``devices``).

    Raises:
      FileNotFoundError: no checkpoint at ``path`` or at its VAE's.
      ValueError: another stage's checkpoint, or one without the latents'
        scale.
    """
    saved = restore.load_continuous(path, step=step, use_ema=use_ema)
    scale = saved.config.get("latent_scale")
    if scale is None:
      raise ValueError(f"{path}: the config has no latent_scale (the loop "
                       "records the latent cache's)")
    head, num_levels = restore.continuous_head_from_config(saved.config)
    defaults = ContinuousOptions.from_config(
        saved.decode, guided=saved.null_label is not None)
    return cls(saved.model, saved.params, head, saved.tokenizer,
               saved.tokenizer_params, image_size=saved.image_size,
               latent_scale=float(scale), num_levels=num_levels,
               null_label=saved.null_label, defaults=defaults, **kwargs)

  def checked_options(self, **overrides) -> ContinuousOptions:
    """:meth:`options`, refusing what this model cannot do (guidance
    without a null class, the density order or guidance with the wrong
    head)."""
    opts = self.options(**overrides)
    if opts.guided and self.null_label is None:
      raise ValueError(
          "cfg_scale needs a model trained with label dropout (config."
          "continuous.label_dropout > 0); this checkpoint has no null class")
    continuous_sampling.draw_for(self.head, self.num_levels, opts)
    return opts

  # -- latents ---------------------------------------------------------------

  def encode(self, images) -> np.ndarray:
    """uint8 ``[n, H, W, 3]`` -> float32 scaled latents ``[n, h, w, C]``."""
    fn = self._jit(("encode",), lambda p, x: self.tokenizer.apply(
        {"params": p["tokenizer"]}, x,
        method=self.tokenizer.encode_to_latents) * self.latent_scale)
    return self._batched(fn, [imageio.to_float(images)])[0]

  def decode_tokens(self, latents) -> np.ndarray:
    """float scaled latents ``[n, h, w, C]`` -> float32 images (unclipped)."""
    fn = self._jit(("render",), self._render)
    return self._batched(fn, [np.asarray(latents, np.float32)])[0]

  def _render(self, params, latents):
    return self.tokenizer.apply({"params": params["tokenizer"]},
                                latents / self.latent_scale,
                                method=self.tokenizer.decode)

  # -- generation and editing ------------------------------------------------

  def sample(self, labels, *, seed: int = 0, progress=None,
             **options) -> Samples:
    """Class-conditional samples (``options``: :class:`ContinuousOptions`
    fields); ``tokens`` are the scaled latents."""
    return self._sample_labels(self.check_labels(labels), seed,
                               self.checked_options(**options), progress)

  def _sample_labels(self, labels, seed, opts, progress=None) -> Samples:
    x, unknown = continuous_sampling.initial(labels, self.model.num_tokens,
                                             self.model.channels)
    return self._decode(x, unknown, labels, seed, opts, progress)

  def regenerate(self, images, token_masks, labels, seed, opts, *,
                 index_offset: int = 0) -> np.ndarray:
    """See :meth:`TokenImages.regenerate`; known latents never change."""
    n = len(images)
    x = self.encode(images).reshape(n, self.model.num_tokens, -1)
    unknown = np.asarray(token_masks, bool).reshape(n, -1)
    return self._decode(x, unknown, labels, seed, opts,
                        index_offset=index_offset).float_images

  inpaint = edit_tasks.inpaint
  edit = edit_tasks.edit
  outpaint = edit_tasks.outpaint
  panorama = edit_tasks.panorama

  def _decode(self, x, unknown, labels, seed, opts, progress=None, *,
              index_offset: int = 0) -> Samples:
    """Fills the ``unknown [n, L]`` latents of ``x [n, L, C]``."""
    fn = self._jit(("continuous",) + opts.static(),
                   lambda p, *rows: self._decode_images(opts, p, *rows))
    keys = row_keys(seed, np.arange(len(x), dtype=np.uint32)
                    + np.uint32(index_offset))
    latents, images = self._batched(
        fn, [np.asarray(x, np.float32), np.asarray(unknown, bool),
             np.asarray(labels, np.int32), np.asarray(keys)],
        progress=progress)
    return Samples(images=imageio.to_uint8(images), tokens=latents,
                   labels=np.asarray(labels, np.int32), float_images=images)

  def _decode_images(self, opts, params, x, unknown, labels, keys):
    predict = continuous_sampling.Predict(
        self.model, self.null_label if opts.guided else None)
    draw = continuous_sampling.draw_for(self.head, self.num_levels, opts)
    latents = continuous_decode.decode_rows(
        params["model"], x, unknown, labels, keys, opts, predict=predict,
        draw=draw).reshape(-1, *self.grid, self.model.channels)
    return latents, self._render(params, latents)

  def _model(self):
    return self.model

  def _closure(self) -> tuple:
    return (self.model, self.head, self.tokenizer, self.null_label,
            self.num_levels, self.latent_scale)
