"""The stage-2 (MaskGIT transformer) train step: masked visual token modeling.

Per step: images -> tokens with the frozen tokenizer (or pre-computed
tokens), ``r ~ U[0, 1)`` and ``ceil(gamma(r) N)`` uniformly chosen tokens
masked per image, label-smoothed cross-entropy on the masked tokens, an
AdamW update and an EMA of the parameters.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from maskgit_jax.objectives import mvtm
from maskgit_jax.models import transformer as transformer_lib
from maskgit_jax.models import vqgan as vqgan_lib


@flax.struct.dataclass
class TransformerState:
  """step (int32), params, ema_params (same tree) and the optimizer state."""

  step: jax.Array
  params: Any
  ema_params: Any
  opt_state: Any


def make_optimizer(*, learning_rate: float, warmup_steps: int,
                   total_steps: int, b1: float = 0.9, b2: float = 0.96,
                   weight_decay: float = 0.045, grad_clip: float | None = 1.0,
                   schedule: str = "cosine", accumulation_steps: int = 1,
                   decay_matrices_only: bool = False
                   ) -> optax.GradientTransformation:
  """AdamW with linear warmup, then cosine decay (or constant), as in the paper.

  ``decay_matrices_only``: weight decay on parameters of two or more
  dimensions only (not biases, LayerNorm scales; MAE's and MAGE's
  ``add_weight_decay``); the default decays every parameter.
  """
  if schedule == "cosine":
    decay = optax.cosine_decay_schedule(
        learning_rate, max(total_steps - warmup_steps, 1))
  elif schedule == "constant":
    decay = optax.constant_schedule(learning_rate)
  else:
    raise ValueError(f"learning-rate schedule must be 'cosine' or "
                     f"'constant', got {schedule!r}")
  if warmup_steps > 0:
    lr = optax.join_schedules(
        [optax.linear_schedule(0.0, learning_rate, warmup_steps), decay],
        [warmup_steps])
  else:
    lr = decay
  parts = [optax.clip_by_global_norm(grad_clip)] if grad_clip else []
  mask = _is_matrix if decay_matrices_only else None
  parts.append(optax.adamw(lr, b1=b1, b2=b2, weight_decay=weight_decay,
                           mask=mask))
  tx = optax.chain(*parts)
  if accumulation_steps > 1:
    tx = optax.MultiSteps(tx, every_k_schedule=accumulation_steps)
  return tx


def _is_matrix(params):
  return jax.tree.map(lambda x: jnp.ndim(x) >= 2, params)


def ema_decay_at(step: jax.Array, decay: float) -> jax.Array:
  """The EMA decay used at ``step``: ``min(decay, (1 + step) / (10 + step))``.

  Without the ramp the average would keep ``decay ** t`` of the random init
  (a quarter of it after 1,400 steps at 0.999), which ruins short runs; with
  it the EMA follows the params early and settles to ``decay``. The ramp is
  the ``num_updates`` rule of TensorFlow's ExponentialMovingAverage.
  """
  step = jnp.asarray(step, jnp.float32)
  return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def new_state(params, optimizer: optax.GradientTransformation
              ) -> TransformerState:
  """Step 0: ``params``, their EMA copy and the optimizer's initial state."""
  return TransformerState(
      step=jnp.zeros((), jnp.int32), params=params,
      ema_params=jax.tree_util.tree_map(jnp.copy, params),
      opt_state=optimizer.init(params))


def batch_tokens(batch: dict, tokenizer: vqgan_lib.VQGAN | None,
                 tokenizer_params) -> jax.Array:
  """int32 ``[b, h * w]`` image tokens of a batch: its cached ``tokens``, or
  its ``images`` tokenized by the frozen ``tokenizer``."""
  if "tokens" in batch:
    tokens = batch["tokens"]
  else:
    if tokenizer is None:
      raise ValueError("batch has no 'tokens' and no tokenizer is set")
    tokens = tokenizer.apply({"params": tokenizer_params}, batch["images"],
                             method=tokenizer.encode_to_indices)
  return jax.lax.stop_gradient(tokens.reshape(tokens.shape[0], -1))


def check_label_dropout(label_dropout: float, null_label: int | None) -> None:
  """Raises ValueError unless ``label_dropout`` lies in [0, 1) and a null
  label exists when it is positive."""
  if not 0.0 <= label_dropout < 1.0:
    raise ValueError(f"label_dropout must lie in [0, 1), got {label_dropout}")
  if label_dropout > 0 and null_label is None:
    raise ValueError("label_dropout > 0 needs a null_label")


def drop_labels(rng: jax.Array, labels: jax.Array, label_dropout: float,
                null_label: int | None) -> jax.Array:
  """``labels [b]`` with a share ``label_dropout`` replaced by ``null_label``
  (classifier-free guidance training); unchanged when the share is 0."""
  if label_dropout <= 0:
    return labels
  dropped = jax.random.bernoulli(rng, label_dropout, labels.shape)
  return jnp.where(dropped, null_label, labels)


def update(state: TransformerState, loss_fn,
           optimizer: optax.GradientTransformation, ema_decay: float
           ) -> tuple[TransformerState, dict[str, jax.Array]]:
  """One optimizer step on ``loss_fn(params) -> (loss, metrics)`` and the EMA.

  Returns the new state and float32 metrics (``loss_fn``'s, plus ``loss``
  and ``grad_norm``).
  """
  (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  ema_params = optax.incremental_update(
      params, state.ema_params, 1.0 - ema_decay_at(state.step, ema_decay))
  metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads))
  new_state = TransformerState(step=state.step + 1, params=params,
                               ema_params=ema_params, opt_state=opt_state)
  return new_state, {k: jnp.asarray(v, jnp.float32)
                     for k, v in metrics.items()}


@dataclasses.dataclass(frozen=True)
class TransformerTrainer:
  """Model, optimizer and MVTM settings; builds and steps a TransformerState.

  Attributes:
    model: the transformer.
    optimizer: an optax transformation (see :func:`make_optimizer`).
    tokenizer: the frozen VQGAN used to tokenize image batches; None when
      batches carry ``tokens`` already.
    schedule, min_mask_rate, label_smoothing, loss_on: MVTM settings.
    ema_decay: decay of the parameter EMA (0.999), reached gradually: step t
      uses ``min(ema_decay, (1 + t) / (10 + t))`` (see :func:`ema_decay_at`).
    label_dropout: share of labels replaced by ``null_label`` (the
      unconditional class that classifier-free guidance contrasts with).
    null_label: the label of the null class (needed when label_dropout > 0).
  """

  model: transformer_lib.Transformer
  optimizer: optax.GradientTransformation
  tokenizer: vqgan_lib.VQGAN | None = None
  schedule: str = "cosine"
  min_mask_rate: float = 0.0
  label_smoothing: float = 0.1
  loss_on: str = "masked"
  ema_decay: float = 0.999
  label_dropout: float = 0.0
  null_label: int | None = None

  def __post_init__(self):
    check_label_dropout(self.label_dropout, self.null_label)

  def init(self, rng: jax.Array) -> TransformerState:
    """A fresh state whose params are boxed with logical axis names.

    ``nn.unbox`` it for direct use; :func:`maskgit_jax.runtime.sharding.create_sharded`
    uses the boxes to place every leaf.
    """
    ids = jnp.zeros((1, self.model.max_position_embeddings), jnp.int32)
    return new_state(self.model.init(rng, ids)["params"], self.optimizer)

  def tokens(self, batch: dict, tokenizer_params) -> jax.Array:
    """int32 ``[b, h * w]`` image tokens of a batch (see :func:`batch_tokens`)."""
    return batch_tokens(batch, self.tokenizer, tokenizer_params)

  def train_step(self, state: TransformerState, batch: dict, rng: jax.Array,
                 tokenizer_params=None
                 ) -> tuple[TransformerState, dict[str, jax.Array]]:
    """One MVTM update.

    Args:
      state: the current state (unboxed).
      batch: ``labels`` int ``[b]`` and ``images`` float ``[b, H, W, 3]`` in
        [0, 1] (tokenized here) or ``tokens`` int ``[b, h, w]``.
      rng: this step's key (fold the step in before calling).
      tokenizer_params: params of the frozen tokenizer.

    Returns:
      ``(new_state, metrics)`` with loss, masked_accuracy, masked_per_row,
      grad_norm and learning-rate-free scalars.
    """
    layout = self.model.layout
    tokens = self.tokens(batch, tokenizer_params)
    labels = batch["labels"]
    batch_size, n = tokens.shape
    mask_rng, dropout_rng, label_rng = jax.random.split(rng, 3)
    mask = mvtm.sample_mask(mask_rng, batch_size, n, method=self.schedule,
                               min_mask_rate=self.min_mask_rate)
    labels = drop_labels(label_rng, labels, self.label_dropout,
                         self.null_label)
    inputs = layout.make_sequence(labels, tokens, mask=mask)
    targets = layout.make_sequence(labels, tokens)
    loss_mask = jnp.concatenate([jnp.zeros((batch_size, 1), bool), mask], 1)

    def loss_fn(params):
      logits = self.model.apply({"params": params}, inputs,
                                deterministic=False,
                                rngs={"dropout": dropout_rng})
      return mvtm.mvtm_loss(logits=logits, targets=targets, mask=loss_mask,
                               label_smoothing=self.label_smoothing,
                               loss_on=self.loss_on)

    return update(state, loss_fn, self.optimizer, self.ema_decay)

