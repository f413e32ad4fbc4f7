"""What each token stage trains: one small objective per stage.

Each objective gives :class:`~maskgit_jax.trainers.token_trainer.TokenTrainer`
its parameters (``init_params``) and its loss on a batch of tokens
(``loss(params, tokens, labels, rng, frozen)``):

* :class:`MVTM`: MaskGIT's masked visual token modeling (paper Section 3.1).
* :class:`NextToken`: the autoregressive prior (VQGAN's stage 2).
* :class:`MAGE`: variable-ratio masking with token dropping.
* :class:`Critic`: a token critic learning a frozen generator's samples
  (Lezama et al., ECCV 2022); ``frozen`` is the generator's params.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from maskgit_jax.models import causal_transformer as causal_lib
from maskgit_jax.models import critic as critic_lib
from maskgit_jax.models import mage as mage_lib
from maskgit_jax.models import transformer as transformer_lib
from maskgit_jax.objectives import contrastive
from maskgit_jax.objectives import mage_corruption
from maskgit_jax.objectives import mvtm
from maskgit_jax.objectives import token_critic


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


def _apply(model, params, ids, rng, *args):
  """The model in training mode (dropout on ``rng``)."""
  return model.apply({"params": params}, ids, *args, deterministic=False,
                     rngs={"dropout": rng})


@dataclasses.dataclass(frozen=True)
class MVTM:
  """Masked visual token modeling: ``r ~ U[0, 1)``, ``ceil(gamma(r) N)``
  uniformly chosen tokens masked per image, label-smoothed cross-entropy on
  the masked tokens (``loss_on="masked"``) or all. ``mask_ratio`` other
  than "schedule" draws the masked share otherwise (``mvtm.MASK_RATIOS``).

  ``label_dropout``: share of labels replaced by ``null_label`` (the class
  that classifier-free guidance contrasts with). ``unconditional``: every
  label is 0, the one class of a model with ``num_classes == 1`` (MAGE's
  foil: the same model without labels; no guidance).
  """

  model: transformer_lib.Transformer
  schedule: str = "cosine"
  min_mask_rate: float = 0.0
  label_smoothing: float = 0.1
  loss_on: str = "masked"
  label_dropout: float = 0.0
  null_label: int | None = None
  mask_ratio: str = "schedule"
  unconditional: bool = False

  def __post_init__(self):
    check_label_dropout(self.label_dropout, self.null_label)
    if self.unconditional and (self.model.num_classes != 1 or
                               self.label_dropout):
      raise ValueError(
          "an unconditional MaskGIT has one class token and no label "
          "dropout (model.num_classes 1, masking.label_dropout 0), got "
          f"{self.model.num_classes} and {self.label_dropout}")
    if self.mask_ratio not in mvtm.MASK_RATIOS:
      raise ValueError(f"mask_ratio {self.mask_ratio!r}; expected one of "
                       f"{mvtm.MASK_RATIOS}")

  def init_params(self, rng):
    ids = jnp.zeros((1, self.model.max_position_embeddings), jnp.int32)
    return self.model.init(rng, ids)["params"]

  def loss(self, params, tokens, labels, rng, frozen=None):
    """Metrics: masked_accuracy, masked_per_row."""
    del frozen
    layout = self.model.layout
    batch_size, n = tokens.shape
    mask_rng, dropout_rng, label_rng = jax.random.split(rng, 3)
    mask = mvtm.sample_mask(mask_rng, batch_size, n, method=self.schedule,
                            min_mask_rate=self.min_mask_rate,
                            distribution=self.mask_ratio)
    labels = (jnp.zeros_like(labels) if self.unconditional else
              drop_labels(label_rng, labels, self.label_dropout,
                          self.null_label))
    inputs = layout.make_sequence(labels, tokens, mask=mask)
    targets = layout.make_sequence(labels, tokens)
    loss_mask = jnp.concatenate([jnp.zeros((batch_size, 1), bool), mask], 1)
    logits = _apply(self.model, params, inputs, dropout_rng)
    return mvtm.mvtm_loss(logits=logits, targets=targets, mask=loss_mask,
                          label_smoothing=self.label_smoothing,
                          loss_on=self.loss_on)


def next_token_loss(logits: jax.Array, targets: jax.Array,
                    label_smoothing: float = 0.0
                    ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Mean cross-entropy of ``logits [b, L, K]`` against ``targets [b, L]``.

  Returns ``(loss, {"accuracy": top-1 share of targets})``; with label
  smoothing the target distribution is ``(1 - s) onehot + s / K``.
  """
  num_codes = logits.shape[-1]
  onehot = jax.nn.one_hot(targets, num_codes)
  if label_smoothing:
    onehot = onehot * (1.0 - label_smoothing) + label_smoothing / num_codes
  loss = optax.softmax_cross_entropy(logits, onehot).mean()
  accuracy = jnp.mean(jnp.argmax(logits, -1) == targets)
  return loss, {"accuracy": accuracy}


@dataclasses.dataclass(frozen=True)
class NextToken:
  """The autoregressive prior: one causal pass over ``[class, t_0 ..
  t_{L-2}]``, cross-entropy against ``t_0 .. t_{L-1}`` over every token
  (label smoothing 0: none, as Taming); labels dropped as :class:`MVTM`."""

  model: causal_lib.CausalTransformer
  label_smoothing: float = 0.0
  label_dropout: float = 0.0
  null_label: int | None = None

  def __post_init__(self):
    check_label_dropout(self.label_dropout, self.null_label)

  def init_params(self, rng):
    ids = jnp.zeros((1, self.model.num_tokens), jnp.int32)
    return self.model.init(rng, ids)["params"]

  def loss(self, params, tokens, labels, rng, frozen=None):
    """Metrics: accuracy."""
    del frozen
    if tokens.shape[1] != self.model.num_tokens:
      raise ValueError(f"batches have {tokens.shape[1]} tokens per image, "
                       f"the model {self.model.num_tokens}")
    label_rng, dropout_rng = jax.random.split(rng)
    labels = drop_labels(label_rng, labels, self.label_dropout,
                         self.null_label)
    inputs = causal_lib.next_token_inputs(labels, tokens, self.model.layout)
    logits = _apply(self.model, params, inputs, dropout_rng)
    return next_token_loss(logits, tokens, self.label_smoothing)


@dataclasses.dataclass(frozen=True)
class MAGE:
  """MAGE: a mask ratio from ``ratio`` ("truncnorm", MAGE's; "uniform";
  "fixed" at ``fixed_ratio``), one per batch as the reference or one per
  sample; the model on ``[C] + masked tokens`` with only the kept positions
  in the encoder; label-smoothed cross-entropy on the masked positions.
  Labels are ignored (MAGE is unconditional).

  MAGE-C (``contrastive_weight > 0``, a model with a projector): the batch
  holds two views of each example (``views == 2``: cached tokens of the
  image and of its mirror, ``tokens [b, 2, L]``), each masked on its own;
  the loss is the reconstruction over both views plus ``contrastive_weight``
  times :func:`~maskgit_jax.objectives.contrastive.info_nce` of their
  projections at ``contrastive_temperature``.
  """

  model: mage_lib.MAGE
  per_sample_ratio: bool = False
  ratio: str = "truncnorm"
  fixed_ratio: float = 0.75
  label_smoothing: float = 0.1
  contrastive_weight: float = 0.0
  contrastive_temperature: float = 0.1

  def __post_init__(self):
    mage_corruption.check_distribution(self.ratio, self.fixed_ratio)
    if self.contrastive_weight < 0 or self.contrastive_temperature <= 0:
      raise ValueError(
          "contrastive_weight must be >= 0 and contrastive_temperature > 0, "
          f"got {self.contrastive_weight} and {self.contrastive_temperature}")
    if self.contrastive_weight and not self.model.projection_dim:
      raise ValueError("contrastive_weight > 0 (MAGE-C) needs a projector: "
                       "set model.projection_dim > 0")

  @property
  def views(self) -> int:
    """Views of each example a batch holds (2 for MAGE-C)."""
    return 2 if self.contrastive_weight else 1

  def init_params(self, rng):
    ids = jnp.zeros((1, 1 + self.model.num_tokens), jnp.int32)
    return self.model.init(rng, ids)["params"]

  def corrupt(self, tokens: jax.Array, rng: jax.Array):
    """``(ids [b, 1 + L], mask [b, L], kept [b, K])`` for ``tokens [b, L]``."""
    batch, length = tokens.shape
    ratio_rng, noise_rng = jax.random.split(rng)
    ratio = mage_corruption.sample_ratio(
        ratio_rng, (batch,) if self.per_sample_ratio else (),
        distribution=self.ratio, fixed=self.fixed_ratio)
    mask, kept = mage_corruption.drop_and_mask(noise_rng, batch, length, ratio)
    return mage_lib.sequences(tokens, mask, self.model.layout), mask, kept

  def loss(self, params, tokens, labels, rng, frozen=None):
    """Metrics: masked_accuracy, masked_per_row (MAGE-C: also
    contrastive_loss, contrastive_accuracy). ``tokens [b, L]`` (MAGE-C:
    ``[b, 2, L]``)."""
    del labels, frozen
    corrupt_rng, dropout_rng = jax.random.split(rng)
    if not self.contrastive_weight:
      ids, mask, kept = self.corrupt(tokens, corrupt_rng)
      logits = _apply(self.model, params, ids, dropout_rng, kept)
      return mvtm.mvtm_loss(logits=logits, targets=tokens, mask=mask,
                            label_smoothing=self.label_smoothing)
    if tokens.ndim != 3 or tokens.shape[1] != 2:
      raise ValueError(f"MAGE-C needs two views, tokens [b, 2, L]; got "
                       f"{tokens.shape}")
    batch = tokens.shape[0]
    both = jnp.concatenate([tokens[:, 0], tokens[:, 1]])  # [2b, L]
    ids, mask, kept = self.corrupt(both, corrupt_rng)
    logits, projection = self.model.apply(
        {"params": params}, ids, kept, deterministic=False, project=True,
        rngs={"dropout": dropout_rng})
    loss, metrics = mvtm.mvtm_loss(logits=logits, targets=both, mask=mask,
                                   label_smoothing=self.label_smoothing)
    con, accuracy = contrastive.info_nce(projection[:batch],
                                         projection[batch:],
                                         self.contrastive_temperature)
    metrics = dict(metrics, contrastive_loss=con,
                   contrastive_accuracy=accuracy)
    return loss + self.contrastive_weight * con, metrics


@dataclasses.dataclass(frozen=True)
class Critic:
  """A token critic of the frozen ``generator`` (params: ``frozen``).

  Tokens masked with the generator's training ``schedule``; the
  generator's logits on the masked sequence sampled at ``temperature`` at
  the masked positions; labels per position (``label``: "resampled", the
  paper's, or "changed"); the critic's binary cross-entropy on the filled
  sequence, class token left out. ``self_critic=True`` trains only a
  one-unit head on the generator's own hidden states.
  """

  critic: critic_lib.TokenCritic
  generator: transformer_lib.Transformer
  self_critic: bool = False
  label: str = "resampled"
  schedule: str = "cosine"
  temperature: float = 1.0

  def __post_init__(self):
    if self.label not in token_critic.LABELS:
      raise ValueError(f"critic label must be one of {token_critic.LABELS}, "
                       f"got {self.label!r}")
    if self.critic.layout != self.generator.layout:
      raise ValueError("the critic's token layout (codebook, classes) must be "
                       "the generator's")

  def init_params(self, rng):
    ids = jnp.zeros((1, self.generator.max_position_embeddings), jnp.int32)
    params = self.critic.init(rng, ids)["params"]
    if self.self_critic:
      params = {"head": params["head"]}  # the body is the generator's
    return params

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

  def loss(self, params, tokens, labels, rng, frozen):
    """``frozen``: the generator's params."""
    corrupt_rng, dropout_rng = jax.random.split(rng)
    filled, targets, weights = self.corrupt(
        tokens, labels, corrupt_rng, jax.lax.stop_gradient(frozen))
    logits = _apply(self.critic, self.full_params(params, frozen), filled,
                    dropout_rng)
    return token_critic.loss(logits, targets, weights)
