"""Small builders shared by tests."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from maskgit_jax.models import transformer as transformer_lib

# For a program a test runs thousands of times: LLVM's O2 for it alone (the
# suite compiles at O0, tests/conftest.py). ``jax.jit(f,
# compiler_options=RUNTIME_OPTIONS)``.
RUNTIME_OPTIONS = {"xla_backend_optimization_level": 2}


def official_tiny_transformer() -> transformer_lib.Transformer:
  """The transformer configuration of the parity fixtures."""
  return transformer_lib.Transformer(
      codebook_size=64, num_classes=10, hidden_size=64, num_layers=2,
      num_heads=2, mlp_dim=128, max_position_embeddings=65,
      initializer_range=0.1)


def small_random_transformer(grid: tuple[int, int]
                             ) -> transformer_lib.Transformer:
  """A one-layer transformer (11 codes, 3 classes) for a ``grid`` of tokens,
  with large random weights so that its choices vary."""
  return transformer_lib.Transformer(
      codebook_size=11, num_classes=3, hidden_size=16, num_layers=1,
      num_heads=2, mlp_dim=32, max_position_embeddings=1 + grid[0] * grid[1],
      initializer_range=0.5)


def init_params(model, seq_len: int, seed: int = 0):
  """Unboxed ``params`` collection of ``model`` for sequences of ``seq_len``
  (initialised in one jitted program, as the trainers do)."""
  variables = jax.jit(model.init)(jax.random.PRNGKey(seed),
                                  jnp.zeros((1, seq_len), jnp.int32))
  return nn.unbox(variables)["params"]


def jit_apply(module: nn.Module):
  """``module.apply`` compiled as one program, as training and sampling run
  it: ``apply(variables, *arrays, method="name", **static_kwargs)``.

  Called eagerly, ``apply`` compiles every operation on its own: for a small
  transformer several times the compile time of the one program, for the
  same numbers. Positional arguments are traced; ``method`` (a name) and the
  keyword arguments are static.
  """
  @functools.partial(jax.jit, static_argnames=("method", "static"))
  def run(variables, args, method, static):
    return module.apply(variables, *args, method=method, **dict(static))

  def apply(variables, *args, method: str | None = None, **kwargs):
    return run(variables, args, method, tuple(sorted(kwargs.items())))
  return apply
