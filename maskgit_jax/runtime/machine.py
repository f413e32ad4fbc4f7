"""What the machine can do: the measured float32 matmul rate.

Demo runs on different CPUs of a pool differ in minutes (and, since XLA's
CPU kernels differ, in their trained weights); ``make demo`` writes this
rate beside its time so that runs compare (``metrics.json``).
"""

from __future__ import annotations

import statistics
import time


def matmul_gflops(size: int = 1024, repeats: int = 5, device=None) -> float:
  """GFLOP/s of a jitted float32 ``[size, size] @ [size, size]`` product on
  ``device`` (the first local device by default): ``2 size^3`` FLOPs over
  the median of ``repeats`` timed calls, compiled beforehand."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  if size < 1 or repeats < 1:
    raise ValueError(f"size and repeats must be >= 1, got {size}, {repeats}")
  device = device or jax.local_devices()[0]
  a = jax.device_put(jax.random.normal(jax.random.PRNGKey(0), (size, size),
                                       jnp.float32), device)
  product = jax.jit(lambda x: x @ x)
  jax.block_until_ready(product(a))  # compile, untimed
  seconds = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(product(a))
    seconds.append(time.perf_counter() - start)
  return 2 * size ** 3 / statistics.median(seconds) / 1e9
