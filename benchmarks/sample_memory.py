"""Peak host memory of ``sample.py --num_samples`` at two sample counts.

    python -m benchmarks.sample_memory --counts 512,8192 --out /tmp/mem.json

Builds a randomly initialised 64 px model (a factor-16 tokenizer: 4x4
tokens; a one-layer transformer), saves it as workdirs, then runs
``sample.py`` once per count in a fresh process under ``/usr/bin/time -v``
and reads its maximum resident set size (after one warm-up run that fills
the compilation cache). With streaming shards the peak
should not grow with the count (the issue's goal: < 10% apart).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]


def build_model(root: pathlib.Path, image_size: int = 64) -> pathlib.Path:
  """Random tokenizer + transformer workdirs; returns the transformer's."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import checkpointing, restore  # pylint: disable=g-import-not-at-top
  from maskgit_jax.models import vqgan as vqgan_lib  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import vqgan_imagenet, maskgit_imagenet  # pylint: disable=g-import-not-at-top
  tok = vqgan_imagenet.get_config("tiny")
  tok.image_size = image_size
  tok.model.update(channel_multipliers=(1, 1, 1, 1, 1), filters=32,
                   num_res_blocks=1, embedding_dim=16, codebook_size=32)
  gen = maskgit_imagenet.get_config("tiny")
  gen.image_size, gen.token_factor = image_size, 16
  gen.model.update(codebook_size=32, num_classes=10)
  gen.tokenizer_checkpoint = "tokenizer"
  vqgan = vqgan_lib.VQGAN(**tok.model.to_dict())
  tok_params = nn.unbox(vqgan.init(jax.random.PRNGKey(0), jnp.zeros(
      (1, image_size, image_size, 3))))["params"]
  model, _ = restore.transformer_from_config(gen)
  grid = image_size // 16
  params = nn.unbox(model.init(jax.random.PRNGKey(1), jnp.zeros(
      (1, grid * grid + 1), jnp.int32)))["params"]
  for workdir, config, state in (
      (root / "gen" / "tokenizer", tok, {"params": tok_params}),
      (root / "gen", gen, {"params": params, "ema_params": params})):
    checkpointing.write_once(workdir, {"step": jnp.zeros((), jnp.int32),
                                       **state}, config.to_dict())
  return root / "gen"


def peak_rss_mb(checkpoint: pathlib.Path, count: int, out: pathlib.Path
                ) -> float:
  """Maximum resident set size (MB) of one ``sample.py`` run."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO),
             TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run(
      ["/usr/bin/time", "-v", sys.executable, str(REPO / "sample.py"),
       f"--checkpoint={checkpoint}", f"--num_samples={count}",
       "--num_iter=4", "--batch_size=64", "--shard_size=256",
       f"--output_dir={out}"], env=env, capture_output=True, text=True,
      check=False)
  if result.returncode:
    raise RuntimeError(result.stderr[-2000:])
  kb = re.search(r"Maximum resident set size \(kbytes\): (\d+)",
                 result.stderr)
  return int(kb.group(1)) / 1024


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--counts", default="512,8192")
  parser.add_argument("--out", required=True)
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    root = pathlib.Path(tmp)
    checkpoint = build_model(root)
    # A first run fills the compilation cache (it peaks higher, compiling);
    # the measured runs then load the same programs.
    peak_rss_mb(checkpoint, 64, root / "warm_up")
    rows = {}
    for count in (int(c) for c in args.counts.split(",")):
      rows[count] = peak_rss_mb(checkpoint, count, root / f"s{count}")
      print(f"{count} samples: peak RSS {rows[count]:.0f} MB", flush=True)
  low, high = min(rows.values()), max(rows.values())
  result = {"image_size": 64, "peak_rss_mb": rows,
            "relative_spread": (high - low) / low}
  print(json.dumps(result))
  pathlib.Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
  main()
