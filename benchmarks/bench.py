"""``make bench``: hardware ceilings, decode speed vs autoregressive decoding,
training throughput, memory. Writes ``benchmarks/results.json`` and the
generated section of ``benchmarks/RESULTS.md``.

    python -m benchmarks.bench [--quick]

Every figure comes from this one run on this machine: the matmul and copy
ceilings first, then each workload, each in its own process (so its peak
resident memory is its own). Timings are one run of an ahead-of-time
compiled function (compile time reported separately), best of several for
runs under a second.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import pathlib
import platform
import queue as queue_lib
import resource
import time

from benchmarks.timing import compile_timed as _compile
from benchmarks.timing import timed as _timed
from benchmarks.timing import xla_flops as _xla_flops

HERE = pathlib.Path(__file__).resolve().parent
MODEL = dict(hidden=256, layers=4, heads=4, mlp=1024, codebook=1024,
             classes=1000)
GRIDS = (8, 16, 32)
STEPS = (8, 12, 16)
BATCHES = (1, 8, 32)
AR_SAMPLE_STEPS = 8  # recompute baseline: timed steps, scaled to L (see doc)
# Decode variants: (sampler, unroll). The first is the official program; the
# decode and AR tables use FAST (the Generator's default).
VARIANTS = (("gumbel", False), ("cdf", False), ("gumbel", True), ("cdf", True))
FAST = dict(sampler="cdf", unroll=False)
# benchmarks/inference.py's sections; `--only` re-runs some of them into an
# existing results.json.
INFERENCE_SECTIONS = ("precision_decode", "first_call", "generator_overhead",
                      "streaming_sampler")
# The demo's CPU split (sharding.split_host_cpu on 2 cores).
SPLIT_CPU_DEVICES = 4


# -- sections (each runs in a child process) ---------------------------------


def ceilings(quick: bool) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  n = 1024 if quick else 2048
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
  out = {}
  f32, _ = _compile(lambda x, y: x @ y, a, a)
  out["matmul_f32_gflops"] = 2 * n ** 3 / _timed(f32, a, a, budget=3) / 1e9
  ab = a.astype(jnp.bfloat16)
  bf16, _ = _compile(lambda x, y: jnp.matmul(
      x, y, preferred_element_type=jnp.float32), ab, ab)
  out["matmul_bf16_f32acc_gflops"] = (2 * n ** 3 / _timed(bf16, ab, ab,
                                                          budget=3) / 1e9)
  big = jnp.ones(((8 if quick else 64) * 2 ** 20,), jnp.float32)
  copy, _ = _compile(lambda x: x + 1.0, big)
  out["copy_gbs"] = 2 * big.nbytes / _timed(copy, big, budget=3) / 1e9
  return out


def _maskgit(grid: int):
  import jax  # pylint: disable=g-import-not-at-top
  from maskgit_jax.models import transformer as transformer_lib  # pylint: disable=g-import-not-at-top
  model = transformer_lib.Transformer(
      codebook_size=MODEL["codebook"], num_classes=MODEL["classes"],
      hidden_size=MODEL["hidden"], num_layers=MODEL["layers"],
      num_heads=MODEL["heads"], mlp_dim=MODEL["mlp"],
      max_position_embeddings=grid * grid + 1)
  ids = jax.numpy.zeros((1, grid * grid + 1), jax.numpy.int32)
  return model, jax.jit(model.init)(jax.random.PRNGKey(0), ids)["params"]


def decode(quick: bool) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from benchmarks import ar_baseline  # pylint: disable=g-import-not-at-top
  from maskgit_jax.decoding import parallel_decode  # pylint: disable=g-import-not-at-top
  from maskgit_jax.models import transformer as transformer_lib  # pylint: disable=g-import-not-at-top
  from maskgit_jax.models import vqgan as vqgan_lib  # pylint: disable=g-import-not-at-top
  grids = GRIDS[:2] if quick else GRIDS
  steps = STEPS[:1] if quick else STEPS
  batches = BATCHES[:2] if quick else BATCHES
  rows, ar_rows = [], []
  vqgan = vqgan_lib.VQGAN(filters=32, num_res_blocks=1,
                          channel_multipliers=(1, 1, 2, 2), embedding_dim=64,
                          codebook_size=MODEL["codebook"])
  for grid in grids:
    length = grid * grid + 1
    model, params = _maskgit(grid)
    logits_fn = transformer_lib.CodebookLogits(model)
    vq_params = jax.jit(vqgan.init)(
        jax.random.PRNGKey(0), jnp.zeros((1, grid * 8, grid * 8, 3)))["params"]
    causal = ar_baseline.prior(
        codebook=MODEL["codebook"], classes=MODEL["classes"] + 1,
        hidden=MODEL["hidden"], layers=MODEL["layers"], heads=MODEL["heads"],
        mlp=MODEL["mlp"], tokens=length - 1)
    ar_params = ar_baseline.init(causal)
    for batch in batches:
      inputs = model.layout.masked_sequence(jnp.arange(batch) % 10,
                                            grid * grid)
      rng = jax.random.PRNGKey(0)
      fwd, _ = _compile(logits_fn, params, inputs)
      forward_s = _timed(fwd, params, inputs)
      flops = ar_baseline.forward_flops(
          hidden=MODEL["hidden"], layers=MODEL["layers"], mlp=MODEL["mlp"],
          vocab=MODEL["codebook"], length=length, batch=batch)
      tokens = jnp.zeros((batch, grid, grid), jnp.int32)
      render, _ = _compile(lambda p, t: vqgan.apply(
          {"params": p}, t, method=vqgan.decode_from_indices), vq_params,
                           tokens)
      vqgan_s = _timed(render, vq_params, tokens)
      for t in steps:
        run, compile_s = _compile(
            lambda p, x, r, t=t: parallel_decode.decode(
                p, x, r, tokens_to_logits=logits_fn, num_iter=t,
                mask_token_id=model.layout.mask_id, **FAST).tokens, params,
            inputs, rng)
        seconds = _timed(run, params, inputs, rng)
        rows.append(dict(
            grid=f"{grid}x{grid}", T=t, batch=batch, seconds=seconds,
            images_per_s=batch / seconds,
            with_vqgan_s=seconds + vqgan_s,
            images_per_s_with_vqgan=batch / (seconds + vqgan_s),
            forward_s=forward_s, forward_gflop=flops / 1e9,
            xla_forward_gflop=_xla_flops(fwd) / 1e9,
            gflops=t * flops / seconds / 1e9,
            overhead=seconds / (t * forward_s), compile_s=compile_s))
        print(json.dumps(rows[-1]), flush=True)
      # Autoregressive baselines: L - 1 generated tokens after the class.
      first = jnp.arange(batch) % 10 + MODEL["codebook"]
      maskgit_s = next(r["seconds"] for r in rows
                       if r["grid"] == f"{grid}x{grid}" and r["batch"] == batch
                       and r["T"] == 8)
      k = min(AR_SAMPLE_STEPS, length - 1)
      rec, _ = _compile(lambda p, f, r: ar_baseline.recompute_decode(
          causal, p, f, r, num_steps=k), ar_params, first, rng)
      recompute_s = _timed(rec, ar_params, first, rng) * (length - 1) / k
      kv, _ = _compile(lambda p, f, r: ar_baseline.kv_cache_decode(
          causal, p, f, r), ar_params, first, rng)
      kv_s = _timed(kv, ar_params, first, rng)
      for name, ar_s in (("recompute", recompute_s), ("kv_cache", kv_s)):
        ar_rows.append(dict(grid=f"{grid}x{grid}", batch=batch,
                            baseline=name, maskgit_T=8, maskgit_s=maskgit_s,
                            ar_s=ar_s, ratio=ar_s / maskgit_s,
                            ar_steps=length - 1,
                            extrapolated_from_steps=(k if name == "recompute"
                                                     else length - 1)))
        print(json.dumps(ar_rows[-1]), flush=True)
  return {"decode": rows, "ar_speedup": ar_rows}


def overhead(quick: bool) -> dict:
  """Decode overhead of each (sampler, unroll) variant at T=8, and its parts.

  ``sample_s`` is the work of one iteration besides the forward pass (draw,
  confidence, re-mask choice) timed alone on fixed logits.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from maskgit_jax.decoding import parallel_decode  # pylint: disable=g-import-not-at-top
  from maskgit_jax.models import transformer as transformer_lib  # pylint: disable=g-import-not-at-top
  rows, t = [], 8
  for grid in GRIDS[:1] if quick else GRIDS[:2]:
    model, params = _maskgit(grid)
    logits_fn = transformer_lib.CodebookLogits(model)
    for batch in BATCHES[:2] if quick else BATCHES:
      inputs = model.layout.masked_sequence(jnp.arange(batch) % 10,
                                            grid * grid)
      rng = jax.random.PRNGKey(0)
      fwd, _ = _compile(logits_fn, params, inputs)
      forward_s = _timed(fwd, params, inputs, budget=2)
      logits = fwd(params, inputs)
      for sampler, unroll in VARIANTS:
        run, compile_s = _compile(
            lambda p, x, r, s=sampler, u=unroll: parallel_decode.decode(
                p, x, r, tokens_to_logits=logits_fn, num_iter=t,
                mask_token_id=model.layout.mask_id, sampler=s,
                unroll=u).tokens, params, inputs, rng)
        seconds = _timed(run, params, inputs, rng, budget=2)

        def one_draw(lg, r, s=sampler):
          ids = parallel_decode.sample_tokens(r, lg, 1.0, sampler=s)
          conf = parallel_decode.log_prob_of(lg, ids)
          return parallel_decode.mask_by_random_topk(
              r, jnp.full((lg.shape[0], 1), lg.shape[1] // 2), conf, 1.0)
        draw, _ = _compile(one_draw, logits, rng)
        rows.append(dict(grid=f"{grid}x{grid}", T=t, batch=batch,
                         sampler=sampler, unroll=unroll, seconds=seconds,
                         forward_s=forward_s,
                         overhead=seconds / (t * forward_s),
                         sample_s=_timed(draw, logits, rng, budget=1),
                         compile_s=compile_s))
        print(json.dumps(rows[-1]), flush=True)
  return {"overhead": rows}


def train(quick: bool) -> dict:
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import vqgan_animal_mnist  # pylint: disable=g-import-not-at-top
  from maskgit_jax.trainers import tasks  # pylint: disable=g-import-not-at-top
  from maskgit_jax.trainers import token_objectives  # pylint: disable=g-import-not-at-top
  from maskgit_jax.trainers import token_trainer  # pylint: disable=g-import-not-at-top
  from benchmarks import ar_baseline  # pylint: disable=g-import-not-at-top
  rows = []
  grid, batch = 16, 8 if quick else 32
  model, _ = _maskgit(grid)
  trainer = token_trainer.TokenTrainer(
      token_objectives.MVTM(model), optimizer=token_trainer.make_optimizer(
          learning_rate=1e-4, warmup_steps=10, total_steps=100))
  state = nn.unbox(jax.jit(trainer.init)(jax.random.PRNGKey(0)))
  data = {"tokens": jax.random.randint(jax.random.PRNGKey(1),
                                       (batch, grid, grid), 0, 1024),
          "labels": jnp.arange(batch) % 10}
  step, compile_s = _compile(trainer.train_step, state, data,
                             jax.random.PRNGKey(2))
  seconds = _timed(step, state, data, jax.random.PRNGKey(2), budget=3)
  flops = 3 * ar_baseline.forward_flops(
      hidden=MODEL["hidden"], layers=MODEL["layers"], mlp=MODEL["mlp"],
      vocab=MODEL["codebook"] + MODEL["classes"] + 1, length=grid * grid + 1,
      batch=batch)
  rows.append(dict(model=f"maskgit transformer (hidden 256, 4 layers, "
                   f"{grid}x{grid} tokens, batch {batch})",
                   seconds=seconds, tokens_per_s=batch * grid * grid / seconds,
                   gflop_per_step=flops / 1e9,
                   xla_gflop_per_step=_xla_flops(step) / 1e9,
                   gflops=flops / seconds / 1e9, compile_s=compile_s))
  config = vqgan_animal_mnist.get_config()
  task = tasks.tokenizer_task(config)
  tok_state = nn.unbox(jax.jit(task.init)(jax.random.PRNGKey(0)))
  images = jax.random.uniform(jax.random.PRNGKey(1),
                              (config.batch_size, 32, 32, 3))
  tok_step, compile_s = _compile(
      lambda s, x, r: task.step(s, {"images": x}, r, None), tok_state, images,
      jax.random.PRNGKey(2))
  seconds = _timed(tok_step, tok_state, images, jax.random.PRNGKey(2),
                   budget=3)
  xla = _xla_flops(tok_step)
  rows.append(dict(model=f"VQGAN tokenizer (demo config, 32x32 images, "
                   f"8x8 tokens, batch {config.batch_size})",
                   seconds=seconds,
                   tokens_per_s=config.batch_size * 64 / seconds,
                   gflop_per_step=xla / 1e9, xla_gflop_per_step=xla / 1e9,
                   gflops=xla / seconds / 1e9, compile_s=compile_s))
  return {"train": rows}


def demo_step(quick: bool) -> dict:
  """The demo's transformer step over this process's CPU devices, with its
  profile (XLA operation time by kind) when TensorFlow can read it."""
  import jax  # pylint: disable=g-import-not-at-top
  from benchmarks import step_profile  # pylint: disable=g-import-not-at-top
  step = step_profile.demo_transformer_step()
  compiled, args, flops = step
  seconds = _timed(compiled, *args, budget=1 if quick else 5)
  row = dict(model=f"maskgit transformer (the demo's: hidden 128, 4 layers, "
             f"8x8 tokens, batch 64) on {len(jax.local_devices())} CPU "
             "device(s)", seconds=seconds,
             tokens_per_s=args[1]["tokens"].size / seconds,
             gflop_per_step=flops / 1e9, xla_gflop_per_step=flops / 1e9,
             gflops=flops / seconds / 1e9, compile_s=0.0)
  try:
    profile = step_profile.profile(steps=3 if quick else 5, step=step)
  except ImportError:  # no TensorFlow: no XPlane reader
    profile = None
  return {"row": row, "profile": profile}


def _child(name: str, quick: bool, queue, cpu_devices: int | None) -> None:
  if cpu_devices:
    from maskgit_jax.runtime import sharding  # pylint: disable=g-import-not-at-top
    sharding.split_host_cpu(cpu_devices)  # before JAX starts
  from benchmarks import inference  # pylint: disable=g-import-not-at-top
  section = globals().get(name) or getattr(inference, name)  # by name
  result = section(quick)
  result["peak_rss_mb"] = resource.getrusage(
      resource.RUSAGE_SELF).ru_maxrss / 1024
  queue.put(result)


def _run_isolated(name: str, quick: bool,
                  cpu_devices: int | None = None) -> dict:
  ctx = multiprocessing.get_context("spawn")
  queue = ctx.Queue()
  process = ctx.Process(target=_child, args=(name, quick, queue, cpu_devices))
  start = time.perf_counter()
  process.start()
  while True:  # a section that crashes must not leave us waiting forever
    try:
      result = queue.get(timeout=5)
      break
    except queue_lib.Empty:
      if not process.is_alive():
        raise RuntimeError(f"benchmark section {name} failed (exit code "
                           f"{process.exitcode}); its traceback is above")
  process.join()
  result["wall_s"] = time.perf_counter() - start
  print(f"[bench] {name}: {result['wall_s']:.0f} s, peak RSS "
        f"{result['peak_rss_mb']:.0f} MB", flush=True)
  return result


def run(quick: bool = False) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  import flax  # pylint: disable=g-import-not-at-top
  device = jax.devices()[0]
  results = {
      "date": datetime.date.today().isoformat(),
      "device": f"{device.platform}: {device.device_kind} "
                f"({platform.machine()}, {multiprocessing.cpu_count()} cores)",
      "versions": {"jax": jax.__version__, "flax": flax.__version__,
                   "python": platform.python_version()},
      "model": MODEL,
      "quick": quick,
  }
  c = _run_isolated("ceilings", quick)
  results["matmul_gflops"] = c["matmul_f32_gflops"]
  results["matmul_bf16_gflops"] = c["matmul_bf16_f32acc_gflops"]
  results["copy_gbs"] = c["copy_gbs"]
  o = _run_isolated("overhead", quick)
  results["overhead"] = o["overhead"]
  d = _run_isolated("decode", quick)
  results.update(decode=d["decode"], ar_speedup=d["ar_speedup"],
                 decode_peak_rss_mb=d["peak_rss_mb"])
  t = _run_isolated("train", quick)
  for row in t["train"]:
    row["mfu"] = row["gflops"] / results["matmul_gflops"]
    row["peak_rss_mb"] = t["peak_rss_mb"]
  results["train"] = t["train"]
  for devices in (1, SPLIT_CPU_DEVICES):
    d = _run_isolated("demo_step", quick, cpu_devices=devices)
    d["row"].update(mfu=d["row"]["gflops"] / results["matmul_gflops"],
                    peak_rss_mb=d["peak_rss_mb"])
    results["train"].append(d["row"])
    results.setdefault("demo_step_profiles", []).append(d["profile"])
  for name in INFERENCE_SECTIONS:
    results.update(_inference_section(name, quick))
  return results


def _inference_section(name: str, quick: bool) -> dict:
  """One section of :mod:`benchmarks.inference`, stamped with its date."""
  result = _run_isolated(name, quick)
  result.pop("peak_rss_mb")
  result.pop("wall_s")
  for rows in result.values():
    for row in rows:
      row["date"] = datetime.date.today().isoformat()
  return result


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true",
                      help="smaller sizes (a smoke run, not for the tables)")
  parser.add_argument("--out", default=str(HERE / "results.json"))
  parser.add_argument("--no_markdown", action="store_true")
  parser.add_argument(
      "--only", default="",
      help="comma-separated inference sections (" + ",".join(
          INFERENCE_SECTIONS) + ") re-run into the existing --out")
  args = parser.parse_args(argv)
  only = [s for s in args.only.split(",") if s]
  bad = sorted(set(only) - set(INFERENCE_SECTIONS))
  if bad:
    parser.error(f"unknown --only section(s) {bad}; expected some of "
                 f"{list(INFERENCE_SECTIONS)}")
  if only:
    results = json.loads(pathlib.Path(args.out).read_text())
    for name in only:
      results.update(_inference_section(name, args.quick))
  else:
    results = run(args.quick)
  pathlib.Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
  if not args.no_markdown:
    from benchmarks import report  # pylint: disable=g-import-not-at-top
    report.update_results_md(results, HERE / "RESULTS.md")
  print(f"wrote {args.out}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
