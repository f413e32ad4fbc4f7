"""Sample results and labels: the vocabulary of the inference layer
(decode options: :mod:`maskgit_jax.decoding.decode_options`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from maskgit_jax.runtime import storage
from maskgit_jax.decoding.decode_options import DecodeOptions  # pylint: disable=unused-import

@dataclasses.dataclass(frozen=True)
class Samples:
  """Generated images with their tokens and labels.

  Attributes:
    images: uint8 ``[n, H, W, 3]``.
    tokens: int32 ``[n, h, w]``.
    labels: int32 ``[n]``.
    float_images: float32 ``[n, H, W, 3]``: the tokenizer's output, not
      clipped to [0, 1] (``images`` is it clipped and rounded).
  """

  images: np.ndarray
  tokens: np.ndarray
  labels: np.ndarray
  float_images: np.ndarray

  def take(self, index: np.ndarray) -> "Samples":
    """The samples at ``index`` (int ``[m]``)."""
    return Samples(images=self.images[index], tokens=self.tokens[index],
                   labels=self.labels[index],
                   float_images=self.float_images[index])

  def save_npz(self, path):
    """Writes ``images``, ``tokens`` and ``labels`` (the FID tools read
    it); ``path`` may be local or ``gs://``."""
    return storage.save_npz(path, dict(images=self.images, tokens=self.tokens,
                                       labels=self.labels))


def label_array(labels, num: int | None = None) -> np.ndarray:
  """int32 ``[n]`` from an int or a sequence; one label repeats to ``num``.

  Raises:
    ValueError: non-integer labels, or a count that does not match ``num``.
  """
  arr = np.asarray(labels)
  if arr.dtype.kind not in "iu" and arr.size:
    raise ValueError(f"labels must be integers, got {labels!r}")
  arr = arr.astype(np.int32).reshape(-1)
  if num is not None and arr.size == 1:
    arr = np.repeat(arr, num)
  if num is not None and arr.size != num:
    raise ValueError(f"got {arr.size} labels for {num} images")
  return arr
