"""benchmarks/step_profile.py: XLA operation names -> kinds, trace reading."""

import jax
import jax.numpy as jnp
import pytest

from benchmarks import step_profile


@pytest.mark.parametrize("name, kind", [
    ("ynn_fusion.12", "matmul"), ("dot.3", "matmul"),
    ("copy_bitcast_fusion.7", "copy/transpose"),
    ("transpose.2", "copy/transpose"), ("wrapped_broadcast.16", "broadcast"),
    ("multiply_tanh_fusion.3", "gelu (tanh)"),
    ("reduce_fusion", "reduce"), ("add_divide_fusion", "other elementwise"),
])
def test_kind_of_xla_operation_names(name, kind):
  assert step_profile.kind(name) == kind


def test_trace_of_a_matmul_program_is_mostly_matmul(tmp_path):
  pytest.importorskip("tensorflow")
  x = jnp.ones((512, 512), jnp.float32)
  f = jax.jit(lambda a: jnp.tanh(a @ a) @ a)
  jax.block_until_ready(f(x))
  jax.profiler.start_trace(str(tmp_path))
  for _ in range(3):
    jax.block_until_ready(f(x))
  jax.profiler.stop_trace()
  by_kind = step_profile.thread_time_by_kind(str(tmp_path))
  assert by_kind["matmul"] > 0
  assert by_kind["matmul"] == max(by_kind.values())


def test_markdown_lists_every_kind_with_its_share():
  result = {"devices": 1, "seconds_per_step": 0.2, "xla_gflop_per_step": 10.0,
            "thread_seconds_by_kind": {"matmul": 0.3, "copy/transpose": 0.1},
            "idle_share": 0.0}
  text = step_profile.markdown(result, matmul_gflops=100.0)
  assert "50% of the float32 matmul ceiling" in text
  assert "| matmul | 300.0 | 75% |" in text
  assert "| copy/transpose | 100.0 | 25% |" in text
