"""Trains the tokenizer's perceptual network and saves it (no download).

    python -m maskgit_jax.tools.train_perceptual --data=animal_mnist \
        --image_size=32 --out=runs/perceptual.npz

then train stage 1 with ``--config.perceptual_network=runs/perceptual.npz``
(and ``--config.losses.perceptual_weight=0.1``; ``--config.perceptual_mode
=logits`` for the logit distance). The network
(:class:`maskgit_jax.models.perceptual.PerceptualNet`) is a classifier of
the dataset's train split, seeded apart from the demo's evaluation
classifier and built differently; the weights are the user's to keep, never
committed.
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

import numpy as np

from maskgit_jax.runtime import cli
from maskgit_jax.data import input_pipeline
from maskgit_jax.runtime import supervised
from maskgit_jax.models import perceptual

SEED = 1  # the evaluation classifier uses 0
WIDTHS = (32, 64, 96)


def train(images: np.ndarray, labels: np.ndarray, num_classes: int, *,
          steps: int = 800, widths: Sequence[int] = WIDTHS, seed: int = SEED,
          log: Callable[[str], None] | None = print):
  """Params of a :class:`PerceptualNet` fitted to ``images`` (uint8)."""
  net = perceptual.PerceptualNet(num_classes, tuple(widths))
  return supervised.fit(net, images, labels, steps=steps, seed=seed,
                        name="perceptual net", log=log)


def save(path, params, num_classes: int, widths: Sequence[int] = WIDTHS
         ):
  """Writes the weights file ``restore.load_perceptual`` reads."""
  return supervised.save(path, params, num_classes=np.int32(num_classes),
                         widths=np.asarray(widths, np.int32))


def _split(source, image_size: int) -> tuple[np.ndarray, np.ndarray]:
  records = [source[i] for i in range(len(source))]
  images = np.stack([input_pipeline.center_crop(image, image_size)
                     for image, _ in records]).astype(np.uint8)
  return images, np.asarray([label for _, label in records], np.int32)


def main(argv=None) -> int:
  parser = cli.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data", required=True, help="as config.data.name")
  parser.add_argument("--split", default="train")
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--image_size", type=int, required=True)
  parser.add_argument("--steps", type=int, default=800)
  parser.add_argument("--seed", type=int, default=SEED)
  parser.add_argument("--out", required=True)

  def run(args):
    if args.steps < 1:
      raise ValueError(f"--steps must be positive, got {args.steps}")
    source = input_pipeline.make_source(args.data, args.split, args.data_dir)
    images, labels = _split(source, args.image_size)
    params = train(images, labels, source.num_classes, steps=args.steps,
                   seed=args.seed)
    print(f"wrote {save(args.out, params, source.num_classes)}")

  return cli.run_args(run, parser, argv)


if __name__ == "__main__":
  sys.exit(main())
