"""Einsum attention vs ``jax.nn.dot_product_attention`` in the full transformer.

Measures the jitted forward pass (and forward + backward) of a mid-size
MaskGIT transformer with each ``attention_impl`` in one run and reports the
ratio, so the default can be chosen per backend::

    python -m benchmarks.attention [--out benchmarks/attention.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp

from maskgit_jax.models import transformer as transformer_lib

SHAPES = (  # (batch, grid side) -> sequence length side**2 + 1
    (8, 16),
    (2, 32),
)


def _time(fn, *args, repeats: int = 5) -> float:
  jax.block_until_ready(fn(*args))  # compile + warm up
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - start)
  return best


def run() -> list[dict]:
  rows = []
  for batch, side in SHAPES:
    seq = side * side + 1
    base = transformer_lib.Transformer(
        codebook_size=1024, num_classes=1000, hidden_size=256, num_layers=4,
        num_heads=8, mlp_dim=1024, max_position_embeddings=seq)
    ids = jax.random.randint(jax.random.PRNGKey(0), (batch, seq), 0, 2024)
    params = jax.jit(base.init)(jax.random.PRNGKey(0), ids)
    row = {"batch": batch, "seq_len": seq}
    for impl in ("einsum", "xla"):
      model = base.clone(attention_impl=impl)
      fwd = jax.jit(model.apply)
      grad = jax.jit(jax.grad(lambda p, x, m=model: jnp.mean(m.apply(p, x))))
      row[f"{impl}_fwd_s"] = _time(fwd, params, ids)
      row[f"{impl}_fwd_bwd_s"] = _time(grad, params, ids)
    row["fwd_ratio_xla_over_einsum"] = row["xla_fwd_s"] / row["einsum_fwd_s"]
    row["fwd_bwd_ratio_xla_over_einsum"] = (
        row["xla_fwd_bwd_s"] / row["einsum_fwd_bwd_s"])
    rows.append(row)
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--out", default="benchmarks/attention.json")
  args = parser.parse_args()
  result = {
      "device": str(jax.devices()[0].device_kind),
      "backend": jax.default_backend(),
      "jax": jax.__version__,
      "machine": platform.processor() or platform.machine(),
      "date": time.strftime("%Y-%m-%d"),
      "rows": run(),
  }
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  for row in result["rows"]:
    print(json.dumps(row))


if __name__ == "__main__":
  main()
