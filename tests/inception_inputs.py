"""The Inception parity fixture's inputs, regenerated from its seed (numpy
only: ``scripts/make_inception_fixture.py`` imports this in its scratch
environment)."""

import numpy as np

SEED = 20151205
SIZES = (32, 256, 512)
PER_SIZE = 2


def images(size: int, seed: int = SEED) -> np.ndarray:
  """uint8 ``[PER_SIZE, size, size, 3]``: smooth gradients plus noise."""
  rng = np.random.default_rng([seed, size])
  grid = np.linspace(0.0, 1.0, size)
  smooth = np.stack(np.broadcast_arrays(grid[:, None], grid[None, :],
                                        grid[:, None] * grid[None, :]), -1)
  noise = rng.uniform(-0.3, 0.3, (PER_SIZE, size, size, 3))
  return np.clip(255.0 * (smooth + noise), 0, 255).astype(np.uint8)
