"""Classifier rejection sampling (the paper's Appendix B)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy import special

from maskgit_jax.inference.token_images import TokenImages
from maskgit_jax.inference.options import DecodeOptions, Samples


Classifier = Callable[[np.ndarray], np.ndarray]
"""uint8 images ``[n, H, W, 3]`` -> logits ``[n, num_classes]``."""


def rejection_sample(gen: TokenImages, labels: np.ndarray, seed: int,
                     opts: DecodeOptions, progress, classifier: Classifier,
                     acceptance_rate: float) -> Samples:
  """Draws ``ceil(1 / acceptance_rate)`` candidates per label; keeps the one
  ``classifier`` gives the highest log-probability of its label.

  Candidate ``j`` of label ``i`` is row ``i * per + j`` of one decode, so
  the result depends on the seed and the labels only.

  Raises:
    ValueError: an acceptance rate outside (0, 1], or classifier logits of
      the wrong shape.
  """
  if not 0 < acceptance_rate <= 1:
    raise ValueError(f"acceptance_rate must lie in (0, 1], got "
                     f"{acceptance_rate}")
  per = math.ceil(1.0 / acceptance_rate)
  candidates = np.repeat(labels, per)
  drawn = gen.decode_sequences(gen.masked_sequences(candidates), candidates,
                               seed, opts, progress)
  logits = np.asarray(classifier(drawn.images), np.float64)
  if logits.shape != (len(candidates), logits.shape[-1]):
    raise ValueError(f"the classifier returned shape {logits.shape}; "
                     f"expected [{len(candidates)}, num_classes]")
  log_probs = special.log_softmax(logits, axis=-1)
  score = log_probs[np.arange(len(candidates)), candidates]
  best = score.reshape(len(labels), per).argmax(-1) + per * np.arange(
      len(labels))
  return drawn.take(best)
