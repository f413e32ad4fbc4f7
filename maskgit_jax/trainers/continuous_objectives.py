"""Masked modeling of continuous tokens: MAR's diffusion loss, GIVT's NLL.

The objective of the continuous stage, for
:class:`~maskgit_jax.trainers.token_trainer.TokenTrainer` (the same
``init_params`` / ``loss`` contract as :mod:`.token_objectives`): a share of
each image's tokens is masked (MAR's truncated normal on [0.7, 1] by
default, ``mvtm.MASK_RATIOS``), labels are dropped for guidance, the body
(:class:`~maskgit_jax.models.continuous_transformer.ContinuousTransformer`)
gives a condition ``z`` per position, and the head's loss is averaged over
the masked tokens:

* ``head="diffusion"`` (MAR): each masked token is noised at
  ``batch_mul`` independent levels ``t ~ U{0..T-1}`` of the cosine schedule
  and the head predicts the noise (mean squared error per channel);
* ``head="mixture"`` (GIVT): the mixture's negative log-likelihood of the
  token, per channel (nats).

Tokens come as float ``[b, L, C]``: a VAE's latents times the cache's
``latent_scale``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from maskgit_jax.models import continuous_heads
from maskgit_jax.models import continuous_transformer
from maskgit_jax.objectives import diffusion
from maskgit_jax.objectives import gaussian_mixture
from maskgit_jax.objectives import mvtm
from maskgit_jax.trainers import token_objectives

HEADS = continuous_heads.HEADS


@dataclasses.dataclass(frozen=True)
class ContinuousMVTM:
  """See the module docstring. ``params = {"body": ..., "head": ...}``."""

  model: continuous_transformer.ContinuousTransformer
  head: str = "diffusion"
  head_width: int = 256
  head_depth: int = 3
  num_mixtures: int = 16
  num_levels: int = 1000
  batch_mul: int = 4
  mask_ratio: str = "mar"
  label_dropout: float = 0.0
  null_label: int | None = None

  def __post_init__(self):
    token_objectives.check_label_dropout(self.label_dropout, self.null_label)
    if self.head not in HEADS:
      raise ValueError(f"head {self.head!r}; expected one of {HEADS}")
    if self.mask_ratio not in mvtm.MASK_RATIOS:
      raise ValueError(f"mask_ratio {self.mask_ratio!r}; expected one of "
                       f"{mvtm.MASK_RATIOS}")
    if self.batch_mul < 1:
      raise ValueError(f"batch_mul must be >= 1, got {self.batch_mul}")

  @property
  def head_module(self):
    return continuous_heads.make_head(
        self.head, self.model.channels, head_width=self.head_width,
        head_depth=self.head_depth, num_mixtures=self.num_mixtures)

  def init_params(self, rng):
    body_rng, head_rng = jax.random.split(rng)
    m = self.model
    x = jnp.zeros((1, m.num_tokens, m.channels), jnp.float32)
    body = m.init(body_rng, x, jnp.zeros((1, m.num_tokens), bool),
                  jnp.zeros((1,), jnp.int32))["params"]
    z = jnp.zeros((1, m.hidden_size), jnp.float32)
    if self.head == "diffusion":
      head = self.head_module.init(head_rng, x[:, 0], jnp.zeros((1,)), z)
    else:
      head = self.head_module.init(head_rng, z)
    return {"body": body, "head": head["params"]}

  def head_loss(self, head_params, x0: jax.Array, z: jax.Array,
                rng: jax.Array) -> jax.Array:
    """Per-token loss ``[b, L]`` of tokens ``x0 [b, L, C]`` under ``z``."""
    head = self.head_module
    if self.head == "mixture":
      nll = -gaussian_mixture.log_prob(
          x0, *head.apply({"params": head_params}, z))
      return nll / x0.shape[-1]
    level_rng, noise_rng = jax.random.split(rng)
    shape = x0.shape[:2] + (self.batch_mul,)
    t = jax.random.randint(level_rng, shape, 0, self.num_levels)
    noise = jax.random.normal(noise_rng, shape + x0.shape[-1:])
    bars = jnp.asarray(diffusion.cosine_alpha_bars(self.num_levels),
                       jnp.float32)
    x_t = diffusion.add_noise(x0[:, :, None], noise, bars[t][..., None])
    z = jnp.broadcast_to(z[:, :, None], shape + z.shape[-1:])
    eps = head.apply({"params": head_params}, x_t, t, z)
    return diffusion.epsilon_loss(eps, noise).mean(-1)

  def loss(self, params, tokens, labels, rng, frozen=None):
    """Metrics: masked_per_row."""
    del frozen
    b, length, _ = tokens.shape
    mask_rng, label_rng, dropout_rng, head_rng = jax.random.split(rng, 4)
    mask = mvtm.sample_mask(mask_rng, b, length,
                            distribution=self.mask_ratio)
    labels = token_objectives.drop_labels(label_rng, labels,
                                          self.label_dropout, self.null_label)
    z = self.model.apply({"params": params["body"]}, tokens, mask, labels,
                         deterministic=False, rngs={"dropout": dropout_rng})
    per_token = self.head_loss(params["head"], tokens.astype(jnp.float32), z,
                               head_rng)
    weights = mask.astype(jnp.float32)
    loss = jnp.sum(per_token * weights) / jnp.maximum(weights.sum(), 1.0)
    return loss, {"masked_per_row": jnp.mean(weights.sum(-1))}
