"""``make bench`` sections on inference speed: each precision's
decode, the first call of a fresh process with a cold and a warm
compilation cache, and the Generator's overhead over the bare forward
passes. Run by :mod:`benchmarks.bench` (each section in its own process).

Models (random weights; speed does not depend on their values):

* ``demo``: the demo transformer (``presets.maskgit_animal_mnist``,
  8x8 tokens) with its tokenizer;
* ``A``: hidden 256, 4 layers, 4 heads, MLP 1024, codebook 1024, 1,000
  classes, 8x8 tokens (3.7M parameters);
* ``B``: hidden 512, 8 layers, 8 heads, MLP 2048, the same codes and
  classes, 16x16 tokens (26.7M parameters).

All decodes: T = 8, the Generator's default sampler (``cdf``) and choice
temperature 4.5.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile

from benchmarks import timing

T = 8
PRECISIONS = ("float32", "bfloat16", "bfloat16_matmul")
CONFIGS = {
    "A": dict(hidden_size=256, num_layers=4, num_heads=4, mlp_dim=1024,
              grid=8),
    "B": dict(hidden_size=512, num_layers=8, num_heads=8, mlp_dim=2048,
              grid=16),
}
REPO = pathlib.Path(__file__).resolve().parents[1]


def generator(name: str, precision: str = "float32", batch_size: int = 64):
  """A Generator of random weights for ``name`` ("demo", "A" or "B"), on
  one device (batch 1 is the case the overhead goal is about)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import restore  # pylint: disable=g-import-not-at-top
  from maskgit_jax import sampling  # pylint: disable=g-import-not-at-top
  from maskgit_jax.inference.options import DecodeOptions  # pylint: disable=g-import-not-at-top
  from maskgit_jax.models import transformer as transformer_lib  # pylint: disable=g-import-not-at-top
  from maskgit_jax.models import vqgan as vqgan_lib  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import vqgan_animal_mnist  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import maskgit_animal_mnist  # pylint: disable=g-import-not-at-top
  if name == "demo":
    config = maskgit_animal_mnist.get_config("default")
    model, null = restore.transformer_from_config(config)
    tokenizer = vqgan_lib.VQGAN(**restore.module_kwargs(
        vqgan_animal_mnist.get_config("default").model))
    size = config.image_size
  else:
    c = dict(CONFIGS[name])
    grid = c.pop("grid")
    model = transformer_lib.Transformer(
        codebook_size=1024, num_classes=1000,
        max_position_embeddings=grid * grid + 1, **c)
    tokenizer = vqgan_lib.VQGAN(filters=32, num_res_blocks=1,
                                channel_multipliers=(1, 1, 2, 2),
                                embedding_dim=64, codebook_size=1024)
    size, null = grid * tokenizer.factor, None
  length = model.max_position_embeddings
  params = jax.jit(model.init)(jax.random.PRNGKey(0),
                               jnp.zeros((1, length), jnp.int32))["params"]
  tok_params = jax.jit(tokenizer.init)(
      jax.random.PRNGKey(0), jnp.zeros((1, size, size, 3)))["params"]
  defaults = DecodeOptions(num_iter=T, choice_temperature=4.5, sampler="cdf")
  return sampling.Generator(model, params, tokenizer, tok_params,
                            image_size=size, null_label=null,
                            defaults=defaults, devices=jax.devices()[:1],
                            precision=precision, batch_size=batch_size)


def precision_decode(quick: bool) -> dict:
  """Decode (tokens and images) time per precision; ratios to float32."""
  rows = []
  for name in ("demo", "A", "B"):
    for batch in (1, 8) if quick else (1, 8, 32):
      if quick and name == "B" and batch > 1:
        continue
      times = {}
      for p in PRECISIONS:
        gen = generator(name, p)
        labels = [i % gen.num_classes for i in range(batch)]
        gen.generate(labels)  # compile
        times[p] = timing.timed(lambda g=gen, l=labels: g.generate(l),
                                budget=2)
      for p in PRECISIONS:
        rows.append(dict(model=name, batch=batch, precision=p,
                         seconds=times[p],
                         speedup=times["float32"] / times[p]))
        print(json.dumps(rows[-1]), flush=True)
  return {"precision": rows}


def generator_overhead(quick: bool) -> dict:
  """``Generator.generate`` against T bare forward passes (and against the
  jitted decode plus the tokenizer's decode) at batch 1, float32."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from maskgit_jax.decoding import parallel_decode  # pylint: disable=g-import-not-at-top
  from maskgit_jax.models import transformer as transformer_lib  # pylint: disable=g-import-not-at-top
  rows = []
  for name in ("demo", "A") if quick else ("demo", "A", "B"):
    gen = generator(name)
    model, params = gen.transformer, gen.params["transformer"]
    logits_fn = transformer_lib.CodebookLogits(model)
    seq = gen.masked_sequences(np.zeros(1, np.int32))
    fwd = jax.jit(logits_fn)
    dec = jax.jit(lambda p, s, k: parallel_decode.decode(
        p, s, k, tokens_to_logits=logits_fn, num_iter=T,
        choice_temperature=4.5, sampler="cdf",
        mask_token_id=model.layout.mask_id).final)
    render = jax.jit(lambda p, t: gen.tokenizer.apply(
        {"params": p}, t, method=gen.tokenizer.decode_from_indices))
    tokens = np.zeros((1,) + gen.grid, np.int32)
    key = jax.random.PRNGKey(0)
    parts = {
        "forward": lambda: jax.block_until_ready(fwd(params, seq)),
        "decode": lambda: jax.block_until_ready(dec(params, seq, key)),
        "render": lambda: jax.block_until_ready(
            render(gen.params["tokenizer"], tokens)),
        "generate": lambda: gen.generate([0]),
    }
    s = timing.interleaved_best(parts, 3 if quick else 6)
    rows.append(dict(model=name, **{f"{k}_s": v for k, v in s.items()},
                     over_forwards=s["generate"] / (T * s["forward"]),
                     over_decode_render=s["generate"] / (
                         s["decode"] + s["render"])))
    print(json.dumps(rows[-1]), flush=True)
  return {"generator_overhead": rows}


def streaming_sampler(quick: bool) -> dict:
  """``sample_files.write_shards`` (what ``sample.py --num_samples`` runs)
  against a bare loop of one jitted decode-and-render program, batch 64,
  images per second; interleaved rounds, best of each."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from maskgit_jax.decoding import parallel_decode  # pylint: disable=g-import-not-at-top
  from maskgit_jax.inference import sample_files  # pylint: disable=g-import-not-at-top
  from maskgit_jax.models import transformer as transformer_lib  # pylint: disable=g-import-not-at-top
  batch, batches = 64, 2 if quick else 4
  gen = generator("demo", batch_size=batch)
  model, tokenizer = gen.transformer, gen.tokenizer
  logits_fn = transformer_lib.CodebookLogits(model)

  @jax.jit
  def decode_and_render(params, seq, key):
    final = parallel_decode.decode(
        params["transformer"], seq, key, tokens_to_logits=logits_fn,
        num_iter=T, choice_temperature=4.5, sampler="cdf",
        mask_token_id=model.layout.mask_id).final
    tokens = final[:, 1:].reshape(-1, *gen.grid)
    images = tokenizer.apply({"params": params["tokenizer"]}, tokens,
                             method=tokenizer.decode_from_indices)
    return jnp.round(jnp.clip(images, 0, 1) * 255).astype(jnp.uint8)

  labels = np.arange(batch) % gen.num_classes
  seq = gen.masked_sequences(labels)
  n = batch * batches

  def bare():
    for b in range(batches):
      np.asarray(decode_and_render(gen.params, seq, jax.random.PRNGKey(b)))

  def streaming():
    with tempfile.TemporaryDirectory() as out:
      sample_files.write_shards(gen, out, n, shard_size=2 * batch)

  s = timing.interleaved_best({"bare": bare, "streaming": streaming},
                              2 if quick else 3)
  row = dict(model="demo", batch=batch, images=n,
             bare_images_per_s=n / s["bare"],
             streaming_images_per_s=n / s["streaming"],
             ratio=s["bare"] / s["streaming"])
  print(json.dumps(row), flush=True)
  return {"streaming_sampler": [row]}


# The first call of a fresh process: build the Generator, generate one image.
_FIRST_CALL = """
import json, sys, time
from benchmarks import inference
gen = inference.generator(sys.argv[1])
start = time.perf_counter()
gen.generate([0])
print(json.dumps({"first_call_s": time.perf_counter() - start}))
"""


def _fresh_process(name: str, cache: str) -> float:
  env = dict(os.environ, MASKGIT_JAX_COMPILE_CACHE=cache)
  code = ("from maskgit_jax.runtime import compile_cache; compile_cache.enable()\n"
          + _FIRST_CALL)
  out = subprocess.run([sys.executable, "-c", code, name], env=env, cwd=REPO,
                       capture_output=True, text=True, check=True)
  return json.loads(out.stdout.strip().splitlines()[-1])["first_call_s"]


def first_call(quick: bool) -> dict:
  """First ``generate`` of a fresh process: no cache, cold, warm (median of
  3 fresh processes each; cold ones each get an empty cache)."""
  rows = []
  for name in ("demo", "A") if quick else ("demo", "A", "B"):
    runs = {"off": [], "cold": [], "warm": []}
    for _ in range(1 if quick else 3):
      runs["off"].append(_fresh_process(name, "off"))
      with tempfile.TemporaryDirectory() as cache:
        runs["cold"].append(_fresh_process(name, cache))
        runs["warm"].append(_fresh_process(name, cache))
    med = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}
    rows.append(dict(model=name, **{f"{k}_s": v for k, v in med.items()},
                     warm_over_cold=med["warm"] / med["cold"]))
    print(json.dumps(rows[-1]), flush=True)
  return {"first_call": rows}


def markdown(res: dict) -> list[str]:
  """The three tables for ``RESULTS.md`` (empty when not measured)."""
  lines = []
  if res.get("precision"):
    lines += ["", "### Inference precision (Generator.generate, T = 8, one "
              "device; speed-up over float32)", "",
              f"Measured {res['precision'][0].get('date', res.get('date'))}.",
              "",
              "| model | batch | float32 (s) | bfloat16 (s) | speed-up | "
              "bfloat16_matmul (s) | speed-up |", "|---|---|---|---|---|---|---|"]
    by = {(r["model"], r["batch"], r["precision"]): r for r in res["precision"]}
    for m, b in dict.fromkeys((r["model"], r["batch"])
                              for r in res["precision"]):
      f32, bf, mm = (by[(m, b, p)] for p in PRECISIONS)
      lines.append(f"| {m} | {b} | {f32['seconds']:.3f} | {bf['seconds']:.3f}"
                   f" | {bf['speedup']:.2f}x | {mm['seconds']:.3f} | "
                   f"{mm['speedup']:.2f}x |")
  if res.get("first_call"):
    lines += ["", "### First call of a fresh process (build the Generator, "
              "then generate one image; median of 3 processes)", "",
              f"Measured {res['first_call'][0].get('date', res.get('date'))}."
              " Warm: a second process finds the first one's compiled "
              "programs in the cache directory.", "",
              "| model | cache off (s) | cold cache (s) | warm cache (s) | "
              "warm / cold |", "|---|---|---|---|---|"]
    for r in res["first_call"]:
      lines.append(f"| {r['model']} | {r['off_s']:.2f} | {r['cold_s']:.2f} | "
                   f"{r['warm_s']:.2f} | {r['warm_over_cold']:.0%} |")
  if res.get("generator_overhead"):
    lines += ["", "### Generator overhead at batch 1 (float32)", "",
              "Measured "
              f"{res['generator_overhead'][0].get('date', res.get('date'))}.",
              "",
              "| model | forward (ms) | jitted decode (ms) | tokenizer decode "
              "(ms) | generate (ms) | generate / (T x forward) | generate / "
              "(decode + tokenizer) |", "|---|---|---|---|---|---|---|"]
    for r in res["generator_overhead"]:
      lines.append(
          f"| {r['model']} | {1e3 * r['forward_s']:.1f} | "
          f"{1e3 * r['decode_s']:.1f} | {1e3 * r['render_s']:.1f} | "
          f"{1e3 * r['generate_s']:.1f} | {r['over_forwards']:.2f} | "
          f"{r['over_decode_render']:.2f} |")
  if res.get("streaming_sampler"):
    lines += ["", "### Streaming sampler (`sample.py --num_samples`) against "
              "a bare jitted decode-and-render loop", "",
              "Measured "
              f"{res['streaming_sampler'][0].get('date', res.get('date'))}. "
              "Goal: ratio >= 0.95. Both produce uint8 images on the host; "
              "the sampler also writes ADM shards (a background thread, "
              "overlapping the next batch). A ratio above 1 means the "
              "Generator's program (a per-row vmapped decode with per-row "
              "keys) ran faster here than the bare batched one; two runs on "
              "the 2-core pool machine gave 1.081 and 1.060.", "",
              "| model | batch | images | bare (img/s) | streaming (img/s) | "
              "ratio |", "|---|---|---|---|---|---|"]
    for r in res["streaming_sampler"]:
      lines.append(f"| {r['model']} | {r['batch']} | {r['images']} | "
                   f"{r['bare_images_per_s']:.1f} | "
                   f"{r['streaming_images_per_s']:.1f} | {r['ratio']:.3f} |")
  return lines
