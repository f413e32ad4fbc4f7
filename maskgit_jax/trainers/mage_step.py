"""MAGE's train step: variable-ratio masking with token dropping.

Per step: image tokens (cached, or from the frozen tokenizer); a mask ratio
from the truncated normal (one for the batch, as the reference, or one per
sample); masked and kept positions (:mod:`maskgit_jax.objectives.mage_corruption`); the
model on ``[C] + masked tokens`` with only the kept positions in the
encoder; label-smoothed cross-entropy over the codebook on the masked
positions only; AdamW and the parameter EMA (:func:`transformer_step.update`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from maskgit_jax.objectives import mage_corruption
from maskgit_jax.objectives import mvtm
from maskgit_jax.models import mage as mage_lib
from maskgit_jax.models import vqgan as vqgan_lib
from maskgit_jax.trainers import transformer_step


@dataclasses.dataclass(frozen=True)
class MAGETrainer:
  """Model, optimizer and corruption settings.

  Attributes:
    model: the MAGE model.
    optimizer: an optax transformation.
    tokenizer: the frozen VQGAN for image batches (None: cached tokens).
    per_sample_ratio: one mask ratio per sample instead of per batch.
    ratio: the mask-ratio distribution, "truncnorm" (MAGE's), "uniform" or
      "fixed" (:func:`maskgit_jax.objectives.mage_corruption.sample_ratio`).
    fixed_ratio: the ratio of ``ratio="fixed"``.
    label_smoothing: of the masked-token targets (the reference: 0.1).
    ema_decay: the parameter EMA's decay.
  """

  model: mage_lib.MAGE
  optimizer: optax.GradientTransformation
  tokenizer: vqgan_lib.VQGAN | None = None
  per_sample_ratio: bool = False
  ratio: str = "truncnorm"
  fixed_ratio: float = 0.75
  label_smoothing: float = 0.1
  ema_decay: float = 0.999

  def __post_init__(self):
    mage_corruption.check_distribution(self.ratio, self.fixed_ratio)

  def init(self, rng: jax.Array) -> transformer_step.TransformerState:
    """A fresh state with boxed (logically named) params."""
    ids = jnp.zeros((1, 1 + self.model.num_tokens), jnp.int32)
    return transformer_step.new_state(self.model.init(rng, ids)["params"],
                                      self.optimizer)

  def corrupt(self, tokens: jax.Array, rng: jax.Array):
    """``(ids [b, 1 + L], mask [b, L], kept [b, K])`` for ``tokens [b, L]``."""
    batch, length = tokens.shape
    ratio_rng, noise_rng = jax.random.split(rng)
    ratio = mage_corruption.sample_ratio(
        ratio_rng, (batch,) if self.per_sample_ratio else (),
        distribution=self.ratio, fixed=self.fixed_ratio)
    mask, kept = mage_corruption.drop_and_mask(noise_rng, batch, length, ratio)
    return mage_lib.sequences(tokens, mask, self.model.layout), mask, kept

  def train_step(self, state: transformer_step.TransformerState, batch: dict,
                 rng: jax.Array, tokenizer_params=None):
    """One update; labels in ``batch`` are ignored (MAGE is unconditional).

    Returns ``(new_state, metrics)``: loss, masked_accuracy, masked_per_row,
    grad_norm.
    """
    tokens = transformer_step.batch_tokens(batch, self.tokenizer,
                                           tokenizer_params)
    corrupt_rng, dropout_rng = jax.random.split(rng)
    ids, mask, kept = self.corrupt(tokens, corrupt_rng)

    def loss_fn(params):
      logits = self.model.apply({"params": params}, ids, kept,
                                deterministic=False,
                                rngs={"dropout": dropout_rng})
      return mvtm.mvtm_loss(logits=logits, targets=tokens, mask=mask,
                               label_smoothing=self.label_smoothing)

    return transformer_step.update(state, loss_fn, self.optimizer,
                                   self.ema_decay)
