"""Timing helpers shared by the benchmark sections (no benchmark imports)."""

from __future__ import annotations

import time


def timed(compiled, *args, budget: float = 1.0) -> float:
  """Best wall time of ``compiled(*args)`` over runs totalling ``budget``
  seconds (one run if it alone takes longer)."""
  import jax  # pylint: disable=g-import-not-at-top
  best, spent = float("inf"), 0.0
  while spent < budget or best == float("inf"):
    start = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    took = time.perf_counter() - start
    best, spent = min(best, took), spent + took
    if took > budget:
      break
  return best


def compile_timed(fn, *args):
  """``(jit(fn) compiled for args, seconds it took)``."""
  import jax  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  return compiled, time.perf_counter() - start


def xla_flops(compiled) -> float:
  """XLA's cost-analysis FLOPs of a compiled program."""
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", 0.0))


def interleaved_best(parts: dict, rounds: int) -> dict[str, float]:
  """Best seconds of each zero-argument callable in ``parts``, after one
  warm-up call each (compilation), timed in interleaved rounds: timing one
  part after another in blocks lets the machine's state drift between them
  (a Generator call measured 1.08 s in a block, 0.60 s interleaved)."""
  for fn in parts.values():
    fn()
  best = {k: float("inf") for k in parts}
  for _ in range(rounds):
    for k, fn in parts.items():
      start = time.perf_counter()
      fn()
      best[k] = min(best[k], time.perf_counter() - start)
  return best
