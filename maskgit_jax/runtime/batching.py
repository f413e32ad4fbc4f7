"""Running a jitted function over many rows in fixed-size chunks."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import numpy as np


def map_chunks(fn: Callable[..., Any], arrays: Sequence[np.ndarray],
               size: int, *, put: Callable[[list], list] | None = None,
               progress: Callable[[int, int], None] | None = None) -> Any:
  """``fn(*chunks)`` over row chunks of ``size``, results concatenated.

  The last chunk is padded by repeating its last row, so every call has
  the same shapes and one compilation serves them all; padded rows are
  dropped from the results.

  Args:
    fn: maps chunks ``[size, ...]`` of each of ``arrays`` to a pytree of
      arrays whose leading axis is the row.
    arrays: arrays with the same number of rows ``n``.
    size: rows per call.
    put: places the chunks (e.g. ``jax.device_put`` with a sharding).
    progress: called with ``(rows done, n)`` after each chunk.

  Returns:
    The pytree of ``fn``'s outputs with ``n`` rows, as numpy arrays.
  """
  total = len(arrays[0])
  if any(len(a) != total for a in arrays):
    raise ValueError(f"arrays differ in rows: {[len(a) for a in arrays]}")
  outputs = []
  for start in range(0, total, size):
    chunk = [a[start:start + size] for a in arrays]
    rows = len(chunk[0])
    if rows < size:
      chunk = [np.concatenate([c, np.repeat(c[-1:], size - rows, 0)])
               for c in chunk]
    if put is not None:
      chunk = put(chunk)
    result = jax.device_get(fn(*chunk))
    outputs.append(jax.tree_util.tree_map(lambda r: np.asarray(r)[:rows],
                                          result))
    if progress is not None:
      progress(start + rows, total)
  return jax.tree_util.tree_map(lambda *parts: np.concatenate(parts),
                                *outputs)
