"""The autoregressive prior's train step: next-token prediction.

Per step: image tokens (cached, or from the frozen tokenizer), labels
dropped to the null class with probability ``label_dropout`` (for
classifier-free guidance), one causal pass over ``[class, t_0 .. t_{L-2}]``,
cross-entropy against ``t_0 .. t_{L-1}`` averaged over every token, an AdamW
update and the parameter EMA (:func:`transformer_step.update`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from maskgit_jax.models import causal_transformer as causal_lib
from maskgit_jax.models import vqgan as vqgan_lib
from maskgit_jax.trainers import transformer_step


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
class ARTrainer:
  """Model, optimizer and settings; builds and steps a ``TransformerState``.

  Attributes:
    model: the prior.
    optimizer: an optax transformation (:func:`transformer_step.make_optimizer`).
    tokenizer: the frozen VQGAN for image batches (None: cached tokens).
    label_smoothing: of the next-token targets (0: none, as Taming).
    ema_decay: the parameter EMA's decay (see ``transformer_step.ema_decay_at``).
    label_dropout: share of labels replaced by ``null_label``.
    null_label: the null class (needed when ``label_dropout > 0``).
  """

  model: causal_lib.CausalTransformer
  optimizer: optax.GradientTransformation
  tokenizer: vqgan_lib.VQGAN | None = None
  label_smoothing: float = 0.0
  ema_decay: float = 0.999
  label_dropout: float = 0.0
  null_label: int | None = None

  def __post_init__(self):
    transformer_step.check_label_dropout(self.label_dropout, self.null_label)

  def init(self, rng: jax.Array) -> transformer_step.TransformerState:
    """A fresh state with boxed (logically named) params."""
    ids = jnp.zeros((1, self.model.num_tokens), jnp.int32)
    return transformer_step.new_state(self.model.init(rng, ids)["params"],
                                      self.optimizer)

  def train_step(self, state: transformer_step.TransformerState, batch: dict,
                 rng: jax.Array, tokenizer_params=None):
    """One update on ``batch`` (``labels [b]`` and ``tokens`` or ``images``).

    Returns ``(new_state, metrics)``: loss, accuracy, grad_norm.
    """
    tokens = transformer_step.batch_tokens(batch, self.tokenizer,
                                           tokenizer_params)
    if tokens.shape[1] != self.model.num_tokens:
      raise ValueError(f"batches have {tokens.shape[1]} tokens per image, "
                       f"the model {self.model.num_tokens}")
    label_rng, dropout_rng = jax.random.split(rng)
    labels = transformer_step.drop_labels(label_rng, batch["labels"],
                                          self.label_dropout, self.null_label)
    inputs = causal_lib.next_token_inputs(labels, tokens, self.model.layout)

    def loss_fn(params):
      logits = self.model.apply({"params": params}, inputs,
                                deterministic=False,
                                rngs={"dropout": dropout_rng})
      return next_token_loss(logits, tokens, self.label_smoothing)

    return transformer_step.update(state, loss_fn, self.optimizer,
                                   self.ema_decay)
