"""Where the demo transformer's train step spends its time (XLA:CPU profile).

    python -m benchmarks.step_profile [--steps 5] [--out benchmarks/step_profile.json]

Traces a few steps with ``jax.profiler``, reads the trace's XPlane file and
sums the duration of every XLA operation by kind: matrix multiplications
(``dot`` and the YNNPACK fusions that wrap them), copies and transposes,
broadcasts, the tanh of the gelu, other elementwise fusions, reductions.
The sums are thread time (two worker threads on a 2-core machine), so they
add up to more than the wall time; ``1 - busy / (threads * wall)`` is the
share the threads sat idle between operations. Reading the XPlane proto
needs TensorFlow (the ``train`` extra); without it the section is skipped.
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import re
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
_SKIP = ("ThunkExecutor", "Await", "end:")


def demo_transformer_step(batch_size: int | None = None):
  """The demo's stage-2 step, compiled: ``(compiled, args, xla_flops)``.

  ``xla_flops`` is XLA's count for the whole batch (summed over devices).
  """
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import restore  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import sharding  # pylint: disable=g-import-not-at-top
  from maskgit_jax.models import vqgan  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import vqgan_animal_mnist  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import maskgit_animal_mnist  # pylint: disable=g-import-not-at-top
  from maskgit_jax.trainers import tasks  # pylint: disable=g-import-not-at-top
  config = maskgit_animal_mnist.get_config("default")
  tokenizer = vqgan.VQGAN(**restore.module_kwargs(
      vqgan_animal_mnist.get_config("default").model))
  task = tasks.transformer_task(config, tokenizer=(tokenizer, None))
  state = nn.unbox(jax.jit(task.init)(jax.random.PRNGKey(0)))
  b = batch_size or config.batch_size
  grid = config.image_size // config.token_factor
  batch = {"tokens": jax.random.randint(jax.random.PRNGKey(1),
                                        (b, grid, grid), 0,
                                        config.model.codebook_size),
           "labels": jnp.arange(b) % config.model.num_classes}
  # Data-parallel over every local device (one unless the host CPU was split
  # with sharding.split_host_cpu), as the training loop runs it.
  mesh = sharding.make_mesh((-1, 1, 1))
  state = jax.device_put(state, sharding.replicated(mesh))
  batch = jax.device_put(batch, sharding.batch_sharding(mesh))
  args = (state, batch, jax.random.PRNGKey(2))
  compiled = jax.jit(lambda s, x, r: task.step(s, x, r, None)).lower(
      *args).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  # XLA counts one device's program: the batch's share of that device.
  return compiled, args, float(cost.get("flops", 0.0)) * mesh.size


def kind(op_name: str) -> str:
  """The category of an XLA:CPU operation name (``ynn_fusion.12`` ...)."""
  name = re.sub(r"\.\d+$", "", op_name)
  if name.startswith(("ynn_fusion", "xnn_fusion", "dot", "onednn")):
    return "matmul"
  if "copy" in name or "transpose" in name:
    return "copy/transpose"
  if "broadcast" in name and "fusion" not in name:
    return "broadcast"
  if "reduce" in name:
    return "reduce"
  if "tanh" in name:
    return "gelu (tanh)"
  return "other elementwise"


def thread_time_by_kind(trace_dir: str) -> dict[str, float]:
  """Seconds of XLA operations per :func:`kind` in a ``jax.profiler`` trace."""
  from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-import-not-at-top
  path = sorted(pathlib.Path(trace_dir).rglob("*.xplane.pb"))[-1]
  space = xplane_pb2.XSpace()
  space.ParseFromString(path.read_bytes())
  totals = collections.Counter()
  for plane in space.planes:
    names = plane.event_metadata
    for line in plane.lines:
      if line.name == "python":
        continue
      for event in line.events:
        name = names[event.metadata_id].name
        if not name.startswith(_SKIP):
          totals[kind(name)] += event.duration_ps * 1e-12
  return dict(totals)


def profile(steps: int = 5, step=None) -> dict:
  """Wall time, XLA FLOPs and thread time by kind of one demo step.

  Args:
    steps: traced steps.
    step: ``(compiled, args, xla_flops)`` from :func:`demo_transformer_step`
      when the caller has it already (default: compiled here).
  """
  import os  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  threads = os.cpu_count() or 1
  compiled, args, flops = step or demo_transformer_step()
  jax.block_until_ready(compiled(*args))
  wall = []
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir)
    for _ in range(steps):
      start = time.perf_counter()
      jax.block_until_ready(compiled(*args))
      wall.append(time.perf_counter() - start)
    jax.profiler.stop_trace()
    by_kind = {k: v / steps for k, v in thread_time_by_kind(trace_dir).items()}
  seconds = float(sorted(wall)[len(wall) // 2])
  busy = sum(by_kind.values())
  return {"devices": len(jax.local_devices()),
          "seconds_per_step": seconds, "xla_gflop_per_step": flops / 1e9,
          "thread_seconds_by_kind": by_kind,
          "idle_share": max(0.0, 1.0 - busy / (threads * seconds))}


def markdown(result: dict, matmul_gflops: float | None = None) -> str:
  lines = [f"Step: {result['seconds_per_step'] * 1e3:.0f} ms, "
           f"{result['xla_gflop_per_step']:.1f} GFLOP (XLA)"]
  if matmul_gflops:
    share = result["xla_gflop_per_step"] / result["seconds_per_step"] / (
        matmul_gflops)
    lines[0] += f", {share:.0%} of the float32 matmul ceiling"
  lines[0] += f"; threads idle {result['idle_share']:.0%} of the time."
  lines += ["", "| operations | thread ms per step | share of busy time |",
            "|---|---|---|"]
  by_kind = result["thread_seconds_by_kind"]
  busy = sum(by_kind.values())
  for name, sec in sorted(by_kind.items(), key=lambda kv: -kv[1]):
    lines.append(f"| {name} | {sec * 1e3:.1f} | {sec / busy:.0%} |")
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--out", default=str(HERE / "step_profile.json"))
  args = parser.parse_args(argv)
  result = profile(args.steps)
  pathlib.Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
  print(markdown(result))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
