"""Token conventions shared by the transformer, the decode and the editing code.

The vocabulary of the MaskGIT transformer is laid out as::

    [0, codebook_size)                              image codes
    [codebook_size, codebook_size + num_classes)    class tokens
    vocab_size - 1                                  the [MASK] token

and a sequence is ``[class_token, image_token_0, ..., image_token_{h*w-1}]``
with the image tokens in raster (row-major) order.

The official code marks masked positions with id -1 and relies on ``jnp.take``
wrapping negative indices to reach the last embedding row. Here the mask id
is explicit: :data:`OFFICIAL_MASK_ID` is accepted at API boundaries and
mapped to ``vocab_size - 1`` by :meth:`TokenLayout.canonicalize`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

OFFICIAL_MASK_ID = -1
"""The mask id used by the released MaskGIT code and checkpoints' callers."""


@dataclasses.dataclass(frozen=True)
class TokenLayout:
  """Where image codes, class tokens and the mask token live in the vocabulary.

  Attributes:
    codebook_size: number of image codes of the tokenizer.
    num_classes: number of class tokens (1000 for ImageNet).
  """

  codebook_size: int
  num_classes: int

  def __post_init__(self):
    if self.codebook_size < 1:
      raise ValueError(f"codebook_size must be >= 1, got {self.codebook_size}")
    if self.num_classes < 0:
      raise ValueError(f"num_classes must be >= 0, got {self.num_classes}")

  @property
  def vocab_size(self) -> int:
    """codebook_size + num_classes + 1 (the mask token)."""
    return self.codebook_size + self.num_classes + 1

  @property
  def mask_id(self) -> int:
    """The id of the [MASK] token: the last row of the embedding."""
    return self.vocab_size - 1

  def class_token(self, labels):
    """Class labels ``[batch]`` -> class token ids ``[batch]``.

    Raises:
      ValueError: for concrete labels outside ``[0, num_classes)``.
    """
    if not isinstance(labels, jax.core.Tracer):  # traced labels can't be checked
      arr = np.asarray(labels)
      if arr.size and (arr.min() < 0 or arr.max() >= self.num_classes):
        raise ValueError(
            f"class labels must lie in [0, {self.num_classes}); got values "
            f"from {arr.min()} to {arr.max()}")
    return jnp.asarray(labels, jnp.int32) + self.codebook_size

  def canonicalize(self, ids: jnp.ndarray) -> jnp.ndarray:
    """Maps the official mask id (-1) to :attr:`mask_id`; other ids unchanged."""
    ids = jnp.asarray(ids, jnp.int32)
    return jnp.where(ids == OFFICIAL_MASK_ID, self.mask_id, ids)

  def make_sequence(self, labels, image_tokens, *, mask=None,
                    mask_id: int | None = None) -> jnp.ndarray:
    """Builds transformer input sequences.

    Args:
      labels: int ``[batch]`` class labels.
      image_tokens: int ``[batch, h, w]`` or ``[batch, h * w]`` image codes, or
        ``None`` for an all-masked grid (then ``mask`` must give the shape).
      mask: optional bool ``[batch, h, w]`` / ``[batch, h * w]``; True positions
        are replaced by the mask id.
      mask_id: the id written at masked positions; defaults to
        :attr:`mask_id` (pass :data:`OFFICIAL_MASK_ID` for official inputs).

    Returns:
      int32 ``[batch, 1 + h * w]``: ``[class token, raster-order image tokens]``.
    """
    mask_id = self.mask_id if mask_id is None else mask_id
    labels = jnp.asarray(labels)
    if image_tokens is None:
      if mask is None:
        raise ValueError("make_sequence needs image_tokens or a mask shape")
      mask = jnp.ones_like(jnp.asarray(mask), dtype=bool)
      image_tokens = jnp.zeros(mask.shape, jnp.int32)
    image_tokens = jnp.asarray(image_tokens, jnp.int32)
    batch = image_tokens.shape[0]
    image_tokens = image_tokens.reshape(batch, -1)
    if mask is not None:
      mask = jnp.asarray(mask, bool).reshape(batch, -1)
      image_tokens = jnp.where(mask, mask_id, image_tokens)
    cls = self.class_token(labels).reshape(batch, 1)
    return jnp.concatenate([cls, image_tokens], axis=1)

  def masked_sequence(self, labels, num_image_tokens: int, *,
                      mask_id: int | None = None) -> jnp.ndarray:
    """``[class token, mask x num_image_tokens]`` for class-conditional generation.

    Returns:
      int32 ``[batch, 1 + num_image_tokens]``.
    """
    mask_id = self.mask_id if mask_id is None else mask_id
    cls = self.class_token(labels).reshape(-1, 1)
    masks = jnp.full((cls.shape[0], num_image_tokens), mask_id, jnp.int32)
    return jnp.concatenate([cls, masks], axis=1)


def image_tokens(sequences: jnp.ndarray, grid: tuple[int, int]) -> jnp.ndarray:
  """Drops the class token and reshapes: ``[batch, 1 + h*w]`` -> ``[batch, h, w]``."""
  h, w = grid
  if sequences.shape[-1] != 1 + h * w:
    raise ValueError(
        f"sequence length {sequences.shape[-1]} does not match a {h}x{w} grid "
        f"plus the class token ({1 + h * w})")
  return sequences[..., 1:].reshape(*sequences.shape[:-1], h, w)

