"""Which masked positions a parallel decode keeps at each step.

The official decode keeps the most confident samples (``order="confidence"``).
Two confidence-free orders fix the order of the positions up front instead:

* ``"halton"`` (Besnier et al., ICLR 2025, ``valeoai/Halton-MaskGIT``
  ``Sampler/halton_sampler.py``): the 2-D Halton sequence, base 2 for rows
  and base 3 for columns, scaled to the grid; cells already visited are
  dropped (the first visit counts), which spreads the revealed tokens
  evenly over the image at every step;
* ``"random"``: a uniformly random permutation per sample.

Both reveal ``R_i = max(i + 1, floor((1 - gamma((i + 1) / T)) N0))``
positions by the end of step ``i`` (``gamma``: the mask schedule, ``N0``:
the positions masked in the input), which with the ``arccos`` schedule is
the Halton reference's count. A revealed token is never revisited.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_jax.objectives import mvtm

FIXED_ORDERS = ("halton", "random")
"""Orders decided before the first step (:func:`position_ranks`)."""
ORDERS = ("confidence",) + FIXED_ORDERS


def radical_inverse(index: np.ndarray, base: int) -> np.ndarray:
  """The van der Corput radical inverse of int ``index`` in ``base``.

  ``index`` 1, 2, 3 in base 2 give 1/2, 1/4, 3/4; in base 3, 1/3, 2/3, 1/9.
  """
  index = np.asarray(index, np.int64).copy()
  result = np.zeros(index.shape, np.float64)
  scale = 1.0 / base
  while np.any(index > 0):
    result += (index % base) * scale
    index //= base
    scale /= base
  return result


@functools.lru_cache(maxsize=32)
def halton_order(height: int, width: int) -> np.ndarray:
  """int32 ``[height * width]``: flat grid cells in Halton order.

  Point ``i = 1, 2, ...`` is ``(floor(h2(i) height), floor(h3(i) width))``;
  points continue until every cell appeared (the reference's fixed 10,000
  points miss 6 cells of a 64x64 grid). A permutation of the grid.
  """
  if height < 1 or width < 1:
    raise ValueError(f"grid must be positive, got {height}x{width}")
  cells = height * width
  seen = np.zeros(cells, bool)
  order: list[np.ndarray] = []
  start, chunk = 1, max(1024, 4 * cells)
  while not seen.all():
    index = np.arange(start, start + chunk)
    rows = np.floor(radical_inverse(index, 2) * height).astype(np.int64)
    cols = np.floor(radical_inverse(index, 3) * width).astype(np.int64)
    flat = rows * width + cols
    _, first = np.unique(flat, return_index=True)
    for cell in flat[np.sort(first)]:  # new cells, in order of appearance
      if not seen[cell]:
        seen[cell] = True
        order.append(cell)
    start += chunk
  return np.asarray(order, np.int32)


def revealed_count(step, num_iter: int, initial_unknown: jax.Array,
                   schedule: str) -> jax.Array:
  """``R_step``: positions revealed by the end of step ``step`` (0-based).

  Args:
    step: int scalar (may be traced).
    num_iter: T.
    initial_unknown: int ``[batch]``: ``N0``.
    schedule: the mask schedule ``gamma``.

  Returns:
    int32 ``[batch]``: ``min(N0, max(step + 1, floor((1 - gamma(r)) N0)))``
    with ``r = (step + 1) / T``; ``N0`` at the last step.
  """
  ratio = (jnp.asarray(step, jnp.float32) + 1.0) / num_iter
  n0 = initial_unknown.astype(jnp.float32)
  masked_share = mvtm.schedule(ratio, initial_unknown, schedule)
  revealed = jnp.floor((1.0 - masked_share) * n0).astype(jnp.int32)
  revealed = jnp.maximum(revealed, jnp.asarray(step, jnp.int32) + 1)
  revealed = jnp.where(ratio >= 1.0, initial_unknown, revealed)
  return jnp.minimum(revealed, initial_unknown).astype(jnp.int32)


def position_ranks(order: str, rng: jax.Array, batch: int, grid: tuple[int,
                                                                        int],
                   roll: bool = False) -> jax.Array:
  """float32 ``[batch, 1 + h * w]``: when each position is revealed.

  Lower ranks are revealed first; position 0 (the class token) gets rank
  -1. ``"halton"`` ranks by :func:`halton_order` (rolled by a random offset
  per row when ``roll``, as the reference's ``randomize=True``);
  ``"random"`` by a random permutation per row.
  """
  height, width = grid
  cells = height * width
  if order == "halton":
    rank_of_cell = np.empty(cells, np.int32)
    rank_of_cell[halton_order(height, width)] = np.arange(cells)
    ranks = jnp.broadcast_to(jnp.asarray(rank_of_cell), (batch, cells))
    if roll:
      shift = jax.random.randint(rng, (batch, 1), 0, cells)
      ranks = (ranks + shift) % cells
  elif order == "random":
    ranks = jax.vmap(lambda k: jax.random.permutation(k, cells))(
        jax.random.split(rng, batch))
  else:
    raise ValueError(f"order {order!r} has no fixed ranks; expected one of "
                     f"{FIXED_ORDERS}")
  ranks = ranks.astype(jnp.float32)
  return jnp.concatenate([jnp.full((batch, 1), -1.0), ranks], axis=1)
