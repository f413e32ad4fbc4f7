"""map_chunks: same results as one call, one compiled shape, progress."""

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.runtime import batching


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(n=st.integers(1, 40), size=st.integers(1, 16))
def test_chunks_give_the_whole_result_with_one_shape(n, size):
  shapes = []

  @jax.jit
  def fn(x, y):
    shapes.append(x.shape)  # traced once per shape
    return {"sum": x.sum(-1) + y, "pair": (x * 2, y)}

  x = np.random.default_rng(n).normal(size=(n, 3)).astype(np.float32)
  y = np.arange(n, dtype=np.int32)
  seen = []
  out = batching.map_chunks(fn, [x, y], size,
                            progress=lambda done, total: seen.append(
                                (done, total)))
  np.testing.assert_allclose(out["sum"], x.sum(-1) + y, rtol=1e-6)
  np.testing.assert_array_equal(out["pair"][0], x * 2)
  np.testing.assert_array_equal(out["pair"][1], y)
  assert shapes == [(size, 3)]  # a short last (or only) chunk is padded
  assert seen[-1] == (n, n) and len(seen) == -(-n // size)


def test_rows_must_agree():
  with pytest.raises(ValueError, match="differ in rows"):
    batching.map_chunks(lambda a, b: a, [np.zeros(3), np.zeros(4)], 2)


def test_put_places_each_chunk():
  placed = []

  def put(chunk):
    placed.append(len(chunk[0]))
    return [jnp.asarray(c) for c in chunk]

  out = batching.map_chunks(lambda a: a + 1, [np.arange(5)], 2, put=put)
  np.testing.assert_array_equal(out, np.arange(5) + 1)
  assert placed == [2, 2, 2]  # the last chunk is padded to the same shape
