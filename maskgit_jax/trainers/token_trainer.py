"""The one trainer of every token stage: tokens in, an objective's loss, AdamW
and a parameter EMA out.

A stage differs only in its objective (:mod:`.token_objectives`): how it
builds its parameters and its loss from a batch of tokens. Per step the
trainer takes the batch's cached ``tokens`` (or tokenizes its ``images``
with the frozen tokenizer), calls the objective's loss under
``jax.value_and_grad``, applies the optimizer and moves the EMA.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import flax.struct
import jax
import jax.numpy as jnp
import optax

from maskgit_jax.models import vqgan as vqgan_lib


@flax.struct.dataclass
class TokenState:
  """step (int32), params, ema_params (same tree) and the optimizer state."""

  step: jax.Array
  params: Any
  ema_params: Any
  opt_state: Any


class Objective(Protocol):
  """What a token stage trains: its parameters and its loss."""

  def init_params(self, rng: jax.Array) -> Any:
    """Fresh (boxed, logically named) parameters."""

  def loss(self, params, tokens: jax.Array, labels: jax.Array,
           rng: jax.Array, frozen: Any) -> tuple[jax.Array, dict]:
    """``(loss, metrics)`` on int ``tokens [b, n]`` of class ``labels [b]``;
    ``frozen``: parameters it reads but does not train (or None)."""


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


def new_state(params, optimizer: optax.GradientTransformation) -> TokenState:
  """Step 0: ``params``, their EMA copy and the optimizer's initial state."""
  return TokenState(
      step=jnp.zeros((), jnp.int32), params=params,
      ema_params=jax.tree_util.tree_map(jnp.copy, params),
      opt_state=optimizer.init(params))


def batch_tokens(batch: dict, tokenizer: vqgan_lib.VQGAN | None,
                 tokenizer_params) -> jax.Array:
  """int32 ``[b, h * w]`` image tokens of a batch: its cached ``tokens``, or
  its ``images`` tokenized by the frozen ``tokenizer`` (two-view batches of
  cached tokens ``[b, 2, h, w]``: ``[b, 2, h * w]``); or float ``[b, h *
  w, C]``: its cached (scaled) ``latents [b, h, w, C]``, for the
  continuous stage."""
  if "latents" in batch:
    latents = batch["latents"]
    return jax.lax.stop_gradient(
        latents.reshape(latents.shape[0], -1, latents.shape[-1]))
  if "tokens" in batch:
    tokens = batch["tokens"]
  else:
    if tokenizer is None:
      raise ValueError("batch has no 'tokens' and no tokenizer is set")
    tokens = tokenizer.apply({"params": tokenizer_params}, batch["images"],
                             method=tokenizer.encode_to_indices)
  return jax.lax.stop_gradient(tokens.reshape(*tokens.shape[:-2], -1))


def update(state: TokenState, loss_fn,
           optimizer: optax.GradientTransformation, ema_decay: float
           ) -> tuple[TokenState, dict[str, jax.Array]]:
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
  new = TokenState(step=state.step + 1, params=params, ema_params=ema_params,
                   opt_state=opt_state)
  return new, {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}


@dataclasses.dataclass(frozen=True)
class TokenTrainer:
  """An objective, its optimizer, and the frozen tokenizer of image batches.

  Attributes:
    objective: the stage (:mod:`.token_objectives`).
    optimizer: an optax transformation (see :func:`make_optimizer`).
    tokenizer: the frozen VQGAN that tokenizes image batches; None when
      batches carry ``tokens`` already.
    ema_decay: decay of the parameter EMA (0.999), reached gradually: step t
      uses ``min(ema_decay, (1 + t) / (10 + t))`` (see :func:`ema_decay_at`).
  """

  objective: Objective
  optimizer: optax.GradientTransformation
  tokenizer: vqgan_lib.VQGAN | None = None
  ema_decay: float = 0.999

  def init(self, rng: jax.Array) -> TokenState:
    """A fresh state whose params are boxed with logical axis names.

    ``nn.unbox`` it for direct use;
    :func:`maskgit_jax.runtime.sharding.create_sharded` uses the boxes to
    place every leaf.
    """
    return new_state(self.objective.init_params(rng), self.optimizer)

  def train_step(self, state: TokenState, batch: dict, rng: jax.Array,
                 tokenizer_params=None, frozen=None
                 ) -> tuple[TokenState, dict[str, jax.Array]]:
    """One update.

    Args:
      state: the current state (unboxed).
      batch: ``labels`` int ``[b]`` and ``images`` float ``[b, H, W, 3]`` in
        [0, 1] (tokenized here) or ``tokens`` int ``[b, h, w]``.
      rng: this step's key (fold the step in before calling).
      tokenizer_params: params of the frozen tokenizer (image batches).
      frozen: what the objective reads but does not train (the critic's
        generator), or None.

    Returns:
      ``(new_state, metrics)``: the objective's metrics, loss and grad_norm.
    """
    tokens = batch_tokens(batch, self.tokenizer, tokenizer_params)

    def loss_fn(params):
      return self.objective.loss(params, tokens, batch["labels"], rng, frozen)

    return update(state, loss_fn, self.optimizer, self.ema_decay)
