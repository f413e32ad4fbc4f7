"""The Generator: a trained MaskGIT (transformer + tokenizer) that samples.

Every sample ``i`` draws its randomness from ``fold_in(PRNGKey(seed), i)``,
so a sample depends on its seed, index, label and options only, not on the
batch size or the number of devices. Each decode is jitted once per
(batch shape, static options) and runs data-parallel over the local devices;
temperatures, guidance scale and start iteration are traced (changing them
does not recompile). Editing lives in :mod:`.edit_tasks`, rejection
sampling in :mod:`.rejection`; both are methods here.
"""

from __future__ import annotations

from typing import Sequence

import jax
import numpy as np

from maskgit_jax.runtime import official
from maskgit_jax.decoding import editing
from maskgit_jax.decoding import parallel_decode
from maskgit_jax.runtime import restore
from maskgit_jax.runtime import storage
from maskgit_jax.inference import edit_tasks
from maskgit_jax.inference import rejection
from maskgit_jax.inference import token_images
from maskgit_jax.inference.options import DecodeOptions, Samples
from maskgit_jax.models import critic as critic_lib
from maskgit_jax.models import mage as mage_lib
from maskgit_jax.models import transformer as transformer_lib
from maskgit_jax.models import vqgan as vqgan_lib


class Generator(token_images.TokenImages):
  """A trained MaskGIT (transformer + tokenizer) ready to sample and edit."""

  def __init__(self, transformer: transformer_lib.Transformer,
               transformer_params, tokenizer: vqgan_lib.VQGAN,
               tokenizer_params, *, image_size: int,
               null_label: int | None = None,
               defaults: DecodeOptions | None = None, batch_size: int = 64,
               devices: Sequence[jax.Device] | None = None,
               precision: str = "float32",
               critic: restore.RestoredCritic | None = None):
    """Wraps models and params; most users call :meth:`from_checkpoint`.

    Args:
      transformer, transformer_params: the stage-2 model (MaskGIT's
        transformer, or :class:`~maskgit_jax.models.mage.MAGE`: one class,
        label 0, unconditional) and its params.
      tokenizer, tokenizer_params: the VQGAN and its params.
      image_size: the side of the square images the transformer generates.
      null_label: the null class of a model trained with label dropout.
      defaults: decode options used where a call leaves them out.
      batch_size: images per batch (rounded up to a multiple of the device
        count).
      devices: where to run (default: all local devices, data-parallel).
      precision: the transformer's: "float32" (default, the official
        numerics), "bfloat16" (parameters and activations) or
        "bfloat16_matmul" (products only); logits, softmax and sampling
        stay float32 (see ``models.transformer.with_precision``).
      critic: a token critic (:func:`maskgit_jax.runtime.restore.load_critic`) for
        ``order="critic"``; it runs in float32.
    """
    if isinstance(transformer, mage_lib.MAGE):
      if precision != "float32":
        raise ValueError(f"MAGE samples in float32 only, got precision "
                         f"{precision!r} (the bfloat16 options apply to "
                         "MaskGIT's transformer)")
      self._logits_fn = mage_lib.MAGELogits(transformer)
    else:
      transformer, transformer_params = transformer_lib.with_precision(
          transformer, transformer_params, precision)
      self._logits_fn = transformer_lib.CodebookLogits(transformer)
    self.precision = precision
    self.transformer = transformer
    self.defaults = (defaults or DecodeOptions()).validate()
    if critic is not None and critic.critic.layout != transformer.layout:
      raise ValueError("the critic was trained for another token layout "
                       f"({critic.critic.layout}) than this model's "
                       f"({transformer.layout})")
    self.critic = critic
    params = {"transformer": transformer_params, "tokenizer": tokenizer_params}
    if critic is not None:
      params["critic"] = critic.params
    super().__init__(params, tokenizer, image_size=image_size,
                     num_classes=transformer.num_classes,
                     null_label=null_label, batch_size=batch_size,
                     devices=devices)
    grid = self.grid[0]
    if grid * grid + 1 != transformer.max_position_embeddings:
      raise ValueError(
          f"a {image_size}px image makes {grid}x{grid} tokens but the "
          f"transformer has {transformer.max_position_embeddings - 1} image "
          "positions")

  @classmethod
  def from_checkpoint(cls, path: storage.PathLike, *, use_ema: bool = True,
                      step: int | None = None,
                      critic: storage.PathLike | None = None,
                      **kwargs) -> "Generator":
    """Loads a stage-2 training workdir or a directory from ``official``.

    Args:
      path: the directory holding ``checkpoints/``.
      use_ema: use the EMA params when the checkpoint has them.
      step: the checkpoint step (default: the latest).
      critic: a token critic's workdir, for ``order="critic"``.
      **kwargs: passed to the constructor (``batch_size``, ``devices``,
        ``precision``).

    Raises:
      FileNotFoundError: no checkpoint at ``path`` or at its tokenizer's.
      ValueError: the checkpoint is not a stage-2 (transformer) one.

    A MAGE workdir (``"mage"``) gives a Generator of one class (label 0);
    an autoregressive prior's is refused (:func:`maskgit_jax.sampling.load`
    picks the class for any workdir).
    """
    stage = restore.checkpoint_stage(path)
    if stage == "ar":
      raise ValueError(f"{path} holds an autoregressive prior: load it with "
                       "sampling.load(path) or ARGenerator.from_checkpoint")
    if stage == "mage" and critic is not None:
      raise ValueError("a token critic is trained on a MaskGIT transformer's "
                       "samples, not on MAGE's")
    load = restore.load_mage if stage == "mage" else restore.load_transformer
    saved = load(path, step=step, use_ema=use_ema)
    defaults = DecodeOptions.from_config(
        saved.decode, guided=saved.null_label is not None)
    if critic is not None:
      kwargs["critic"] = restore.load_critic(critic, saved.params)
    return cls(saved.model, saved.params, saved.tokenizer,
               saved.tokenizer_params, image_size=saved.image_size,
               null_label=saved.null_label, defaults=defaults, **kwargs)

  @classmethod
  def from_pretrained(cls, name: str = "imagenet256", *,
                      cache_dir: storage.PathLike | None = None,
                      **kwargs) -> "Generator":
    """A released ImageNet model (``"imagenet256"`` or ``"imagenet512"``).

    The first call reads the released files from their public bucket and
    imports them into ``cache_dir`` (default ``$MASKGIT_JAX_CACHE`` or
    ``~/.cache/maskgit_jax``); later calls load the import. ``kwargs`` go
    to :meth:`from_checkpoint`. Class ids by name:
    :mod:`maskgit_jax.data.imagenet_classes`.
    """
    return cls.from_checkpoint(official.fetch_released(name, cache_dir),
                               **kwargs)

  # -- generation -----------------------------------------------------------

  def sample(self, labels, *, seed: int = 0, progress=None,
             classifier: rejection.Classifier | None = None,
             acceptance_rate: float = 0.05, **options) -> Samples:
    """Samples with tokens; optionally with classifier rejection sampling.

    Args:
      labels: int ``[n]`` classes to generate.
      seed: sample ``i`` uses ``fold_in(PRNGKey(seed), i)``.
      progress: a callable ``(done, total)`` called after every batch.
      classifier: when given, ``ceil(1 / acceptance_rate)`` candidates are
        drawn per sample and the one the classifier finds most likely to be
        of its class is kept (the paper's Appendix B with rate 0.05).
      acceptance_rate: share of candidates kept, in (0, 1].
      **options: :class:`DecodeOptions` fields.
    """
    labels = self.check_labels(labels)
    opts = self.checked_options(**options)
    if classifier is None:
      return self._sample_labels(labels, seed, opts, progress)
    return rejection.rejection_sample(self, labels, seed, opts, progress,
                                      classifier, acceptance_rate)

  edit_defaults = {"num_iter": 12,
                   "start_iter": editing.OFFICIAL_EDIT_START_ITER}
  """:meth:`edit`'s options where a call leaves them out (the official
  Colab's box edit)."""

  inpaint = edit_tasks.inpaint
  edit = edit_tasks.edit
  outpaint = edit_tasks.outpaint
  panorama = edit_tasks.panorama

  # -- the decode every task runs -------------------------------------------

  def checked_options(self, **overrides) -> DecodeOptions:
    """:meth:`options`, refusing guidance on a model without a null class."""
    opts = self.options(**overrides)
    if opts.order == "critic" and self.critic is None:
      raise ValueError(
          "order='critic' needs a token critic: Generator.from_checkpoint("
          "..., critic=CRITIC_WORKDIR) (sample.py --critic=...)")
    if opts.cfg_scale != 0 and self.null_label is None:
      raise ValueError(
          "cfg_scale needs a model trained with label dropout (config."
          "masking.label_dropout > 0); this checkpoint has no null class")
    return opts

  def _decode_images(self, opts: DecodeOptions, traced: dict, params,
                     sequences, keys):
    opts = opts.with_traced(traced)
    layout = self.transformer.layout
    critic_args = {}
    if opts.order == "critic":
      critic_args = dict(
          tokens_to_critic=critic_lib.CriticScores(self.critic.critic),
          critic_params=params["critic"])
    null_token = (None if self.null_label is None
                  else layout.codebook_size + self.null_label)
    return self._render(params, parallel_decode.decode_rows(
        params["transformer"], sequences, keys, opts,
        tokens_to_logits=self._logits_fn, mask_token_id=layout.mask_id,
        null_token=null_token, **critic_args))

  def _model(self):
    return self.transformer

  def _closure(self) -> tuple:
    return (self.transformer, self.tokenizer, self.null_label,
            self.critic and self.critic.critic)
