"""Editing as decoding from a partly masked token grid (paper Section 3.4).

Pixel-space regions (boxes or masks) map to token masks; the decode starts
from the image's tokens with those positions masked; the generated image is
composited back into the original with a feathered mask. These are pure
helpers: :func:`edit_tokens` runs the decode; the caller tokenizes the image
and renders the result with the tokenizer.

Conventions: boxes are ``(top, left, height, width)`` in pixels; masks are
bool ``[H, W]`` with True where content is to be generated; images are NHWC.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from maskgit_jax.decoding import parallel_decode
from maskgit_jax.decoding import tokens as tokens_lib

OFFICIAL_EDIT_START_ITER = 2  # the official editing Colab: 12 steps, from 2


def check_box(box, image_hw: tuple[int, int]) -> tuple[int, int, int, int]:
  """Validates ``(top, left, height, width)`` against an ``H x W`` image."""
  top, left, height, width = (int(v) for v in box)
  h, w = image_hw
  if height <= 0 or width <= 0:
    raise ValueError(f"box {tuple(box)} must have a positive height and width")
  if top < 0 or left < 0 or top + height > h or left + width > w:
    raise ValueError(f"box {tuple(box)} (top, left, height, width) lies "
                     f"outside the {h}x{w} image")
  return top, left, height, width


def box_to_token_mask(box, image_hw: tuple[int, int], factor: int, *,
                      widen: int = 1) -> np.ndarray:
  """Token mask of a pixel box, widened by ``widen`` tokens on each side.

  The official editing Colab widens the box by one token so that generated
  content blends into its surroundings.

  Returns:
    bool ``[H / factor, W / factor]``.
  """
  top, left, height, width = check_box(box, image_hw)
  grid = (image_hw[0] // factor, image_hw[1] // factor)
  mask = np.zeros(grid, bool)
  r0 = max(top // factor - widen, 0)
  c0 = max(left // factor - widen, 0)
  r1 = min(math.ceil((top + height) / factor) + widen, grid[0])
  c1 = min(math.ceil((left + width) / factor) + widen, grid[1])
  mask[r0:r1, c0:c1] = True
  return mask


def pixel_mask_to_token_mask(mask: np.ndarray, factor: int, *,
                             widen: int = 0) -> np.ndarray:
  """A token is masked when any pixel of its patch is; then dilated.

  Args:
    mask: bool ``[H, W]``, True where content is generated.
    factor: pixels per token side (H and W must be multiples).
    widen: extra tokens of dilation on each side.

  Returns:
    bool ``[H / factor, W / factor]``.
  """
  mask = np.asarray(mask, bool)
  h, w = mask.shape
  if h % factor or w % factor:
    raise ValueError(f"mask size {h}x{w} is not a multiple of the token "
                     f"factor {factor}")
  tokens = mask.reshape(h // factor, factor, w // factor, factor).any((1, 3))
  if widen:
    # Square dilation: "widen by k tokens on each side", corners included.
    tokens = ndimage.binary_dilation(tokens, structure=np.ones((3, 3), bool),
                                     iterations=widen)
  return tokens


def token_mask_to_pixels(token_mask: np.ndarray, factor: int) -> np.ndarray:
  """bool ``[h, w]`` -> bool ``[h * factor, w * factor]`` (nearest)."""
  return np.repeat(np.repeat(np.asarray(token_mask, bool), factor, 0),
                   factor, 1)


def feathered_composite(original: np.ndarray, generated: np.ndarray,
                        region: np.ndarray, *, sigma: float = 2.0
                        ) -> np.ndarray:
  """Blends ``generated`` into ``original`` inside ``region`` with soft edges.

  The weight is the Gaussian-blurred region, kept at 0 outside it: pixels
  outside ``region`` are exactly the original's, and the seam inside fades.

  Args:
    original, generated: float ``[..., H, W, C]``.
    region: bool ``[H, W]``: where generated content may appear.
    sigma: blur radius in pixels (0: hard edges).

  Returns:
    float ``[..., H, W, C]``.
  """
  region = np.asarray(region, bool)
  weight = region.astype(np.float32)
  if sigma > 0:
    weight = ndimage.gaussian_filter(weight, sigma) * region
    # Rescale so the region's interior reaches full weight.
    weight = np.clip(weight / max(weight.max(), 1e-6), 0.0, 1.0)
  weight = weight[..., None]
  return original * (1.0 - weight) + generated * weight


def edit_tokens(params, image_tokens: jax.Array, token_mask, labels,
                rng: jax.Array, *, layout: tokens_lib.TokenLayout,
                tokens_to_logits, num_iter: int = 12,
                start_iter: int = OFFICIAL_EDIT_START_ITER,
                choice_temperature: float = 4.5, temperature: float = 1.0,
                schedule: str = "cosine", greedy: bool = False
                ) -> parallel_decode.DecodeState:
  """Regenerates the masked tokens of ``image_tokens`` conditioned on ``labels``.

  Args:
    params: transformer params (for ``tokens_to_logits``).
    image_tokens: int ``[batch, h, w]``.
    token_mask: bool ``[batch, h, w]`` or ``[h, w]``: True where generated.
    labels: int ``[batch]``: the class to paint into the region.
    rng: PRNG key.
    layout: the transformer's token layout.
    tokens_to_logits, num_iter, start_iter, choice_temperature, temperature,
      schedule, greedy: as in :func:`maskgit_jax.decoding.parallel_decode.decode`.

  Returns:
    The decode state; ``state.final[:, 1:]`` are the edited tokens.

  Raises:
    ValueError: for an empty mask or a bad ``start_iter``.
  """
  image_tokens = jnp.asarray(image_tokens, jnp.int32)
  token_mask = np.broadcast_to(np.asarray(token_mask, bool),
                               image_tokens.shape)
  if not token_mask.reshape(token_mask.shape[0], -1).any(-1).all():
    raise ValueError("the edit mask is empty: nothing to generate")
  if not 0 <= start_iter < num_iter:
    raise ValueError(f"start_iter must lie in [0, num_iter={num_iter}), got "
                     f"{start_iter}")
  inputs = layout.make_sequence(labels, image_tokens, mask=token_mask)
  return parallel_decode.decode(
      params, inputs, rng, tokens_to_logits=tokens_to_logits,
      num_iter=num_iter, start_iter=start_iter,
      choice_temperature=choice_temperature, temperature=temperature,
      schedule=schedule, greedy=greedy, mask_token_id=layout.mask_id)
