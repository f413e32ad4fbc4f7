"""Caches stage-2 training tokens: images -> ids with a frozen tokenizer.

    python -m maskgit_jax.tools.pretokenize --tokenizer=runs/tok \
        --data=animal_mnist --split=train --image_size=32 --out=runs/tokens.npz

then train stage 2 with ``--config.data.name=tokens:runs/tokens.npz``. The
file holds ``tokens`` int32 ``[N, 2, h, w]`` (each image and its mirror
image, so random flips survive caching), ``labels`` int32 ``[N]`` and
``num_classes``. Images are centre-cropped: random crops are lost, which is
the price of caching (see benchmarks/RESULTS.md for the speed it buys).

A continuous tokenizer (a VAE, ``model.quantizer_type="kl"``) gives
``latents`` float32 ``[N, 2, h, w, c]`` (posterior means) instead of
``tokens``, and ``latent_scale``: ``1 / std`` of those latents, the factor
latent diffusion and MAR multiply them by so that a generator sees unit
variance.
"""

from __future__ import annotations

import sys
import time

import jax
from etils import epath
import numpy as np

from maskgit_jax.runtime import cli
from maskgit_jax.data import input_pipeline
from maskgit_jax.runtime import restore
from maskgit_jax.runtime import storage


def pretokenize(tokenizer_workdir: str, data: str, split: str,
                image_size: int, out: str, *, data_dir: str | None = None,
                batch_size: int = 256, progress=print) -> epath.Path:
  """Tokenizes a whole split; see the module docstring for the file layout."""
  model, params = restore.load_tokenizer(tokenizer_workdir)
  source = input_pipeline.make_source(data, split, data_dir)
  preprocess = input_pipeline.Preprocess(image_size, train=False)
  method = (model.encode_to_latents if model.continuous
            else model.encode_to_indices)
  encode = jax.jit(lambda p, x: model.apply({"params": p}, x, method=method))
  encoded, labels = [], []
  start = time.perf_counter()
  for first in range(0, len(source), batch_size):
    records = [source[i] for i in range(first, min(first + batch_size,
                                                   len(source)))]
    images = np.stack([preprocess(image, None) for image, _ in records])
    both = np.concatenate([images, images[:, :, ::-1]], axis=0)
    ids = np.asarray(encode(params, both))
    n = len(records)
    encoded.append(np.stack([ids[:n], ids[n:]], axis=1))
    labels.extend(label for _, label in records)
    done = first + n
    rate = done / (time.perf_counter() - start)
    progress(f"tokenized {done}/{len(source)} images ({rate:.0f} images/s)")
  arrays = dict(labels=np.asarray(labels, np.int32),
                num_classes=np.int32(source.num_classes))
  if model.continuous:
    latents = np.concatenate(encoded).astype(np.float32)
    arrays.update(latents=latents, latent_scale=np.float32(
        1.0 / max(float(latents.std()), 1e-12)))
  else:
    arrays["tokens"] = np.concatenate(encoded).astype(np.int32)
  return storage.save_npz(out, arrays)


def main(argv=None) -> int:
  parser = cli.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tokenizer", required=True, help="stage-1 workdir")
  parser.add_argument("--data", required=True, help="as config.data.name")
  parser.add_argument("--split", default="train")
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--image_size", type=int, required=True)
  parser.add_argument("--batch_size", type=int, default=256)
  parser.add_argument("--out", required=True)

  def run(args):
    path = pretokenize(args.tokenizer, args.data, args.split,
                       args.image_size, args.out, data_dir=args.data_dir,
                       batch_size=args.batch_size)
    print(f"wrote {path}")

  return cli.run_args(run, parser, argv)


if __name__ == "__main__":
  sys.exit(main())
