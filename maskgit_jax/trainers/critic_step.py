"""The token-critic train step: a critic learns a frozen generator's samples.

Per step (:mod:`maskgit_jax.objectives.token_critic`): tokens of real images (or
cached tokens), masked with the generator's training schedule; the frozen
generator's logits on the masked sequence, sampled at the masked positions;
labels per position (``"resampled"``, the paper's, or ``"changed"``); the
critic's binary cross-entropy on the filled sequence (the class token left
out); an AdamW update and an EMA of the critic's params.

``self_critic=True`` trains only a one-unit head on the generator's own
hidden states (the generator's params stay frozen in ``extras``).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from maskgit_jax.objectives import mvtm
from maskgit_jax.objectives import token_critic
from maskgit_jax.models import critic as critic_lib
from maskgit_jax.models import transformer as transformer_lib
from maskgit_jax.trainers import transformer_step

CriticState = transformer_step.TransformerState


@dataclasses.dataclass(frozen=True)
class CriticTrainer:
  """Critic, frozen generator and optimizer; builds and steps a CriticState.

  Attributes:
    critic: the critic (for a self-critic, its body is ``generator``).
    generator: the frozen MaskGIT transformer whose samples are judged.
    optimizer: an optax transformation.
    self_critic: train the head only, on the generator's hidden states.
    label: one of :data:`maskgit_jax.objectives.token_critic.LABELS`.
    schedule: the mask schedule of the corruption (the generator's).
    temperature: the generator's sampling temperature for the fills.
    ema_decay: as in :class:`~maskgit_jax.trainers.transformer_step.
      TransformerTrainer`.
  """

  critic: critic_lib.TokenCritic
  generator: transformer_lib.Transformer
  optimizer: optax.GradientTransformation
  self_critic: bool = False
  label: str = "resampled"
  schedule: str = "cosine"
  temperature: float = 1.0
  ema_decay: float = 0.999

  def __post_init__(self):
    if self.label not in token_critic.LABELS:
      raise ValueError(f"critic label must be one of {token_critic.LABELS}, "
                       f"got {self.label!r}")
    if self.critic.layout != self.generator.layout:
      raise ValueError("the critic's token layout (codebook, classes) must be "
                       "the generator's")

  def init(self, rng: jax.Array) -> CriticState:
    """A fresh state (params boxed with logical axis names)."""
    ids = jnp.zeros((1, self.generator.max_position_embeddings), jnp.int32)
    params = self.critic.init(rng, ids)["params"]
    if self.self_critic:
      params = {"head": params["head"]}  # the body is the generator's
    return transformer_step.new_state(params, self.optimizer)

  def full_params(self, params, generator_params):
    """The critic's ``params`` collection (a self-critic's body added)."""
    if self.self_critic:
      return {"body": generator_params, "head": params["head"]}
    return params

  def corrupt(self, tokens: jax.Array, labels: jax.Array, rng: jax.Array,
              generator_params) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(filled [b, 1 + n], targets [b, 1 + n], weights [b, 1 + n])``."""
    layout = self.generator.layout
    batch, n = tokens.shape
    mask_rng, fill_rng = jax.random.split(rng)
    mask = mvtm.sample_mask(mask_rng, batch, n, method=self.schedule)
    inputs = layout.make_sequence(labels, tokens, mask=mask)
    real = layout.make_sequence(labels, tokens)
    logits = transformer_lib.CodebookLogits(self.generator)(
        generator_params, inputs)
    filled = token_critic.fill_masked(
        fill_rng, inputs, jax.lax.stop_gradient(logits), layout.mask_id,
        temperature=self.temperature)
    mask = jnp.concatenate([jnp.zeros((batch, 1), bool), mask], axis=1)
    weights = jnp.ones(real.shape, jnp.float32).at[:, 0].set(0.0)
    return filled, token_critic.targets(mask, real, filled, self.label), weights

  def train_step(self, state: CriticState, tokens: jax.Array,
                 labels: jax.Array, rng: jax.Array, generator_params
                 ) -> tuple[CriticState, dict[str, jax.Array]]:
    """One update on int ``tokens [b, n]`` of class ``labels [b]``."""
    corrupt_rng, dropout_rng = jax.random.split(rng)
    filled, targets, weights = self.corrupt(tokens, labels, corrupt_rng,
                                            generator_params)

    def loss_fn(params):
      logits = self.critic.apply(
          {"params": self.full_params(params, generator_params)}, filled,
          deterministic=False, rngs={"dropout": dropout_rng})
      return token_critic.loss(logits, targets, weights)

    return transformer_step.update(state, loss_fn, self.optimizer,
                                   self.ema_decay)
