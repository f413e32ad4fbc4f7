"""Linear-probe accuracy of a checkpoint's features on a labelled dataset.

    python -m maskgit_jax.evaluation.probe --features=mage \
        --checkpoint=runs/mage [--dataset=animal_mnist] [--output_json=p.json]
    python -m maskgit_jax.evaluation.probe --features=maskgit \
        --checkpoint=demo_out/maskgit
    python -m maskgit_jax.evaluation.probe --features=tokenizer \
        --checkpoint=demo_out/tokenizer
    python -m maskgit_jax.evaluation.probe --features=pixels

Features (:mod:`maskgit_jax.evaluation.representations`) of
``--train_split`` train the probe (:mod:`maskgit_jax.evaluation.linear_probe`:
non-affine BatchNorm + linear, AdamW); its top-1 accuracy on
``--eval_split`` is printed (and written to ``--output_json``). Images are
center-cropped to the checkpoint's image size when it has one.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from maskgit_jax.runtime import cli
from maskgit_jax.runtime import storage


def load_split(dataset: str, split: str, data_dir: str | None,
               image_size: int | None, limit: int | None
               ) -> tuple[np.ndarray, np.ndarray, int]:
  """uint8 images ``[n, S, S, 3]``, int32 labels ``[n]`` and the class count.

  Raises:
    ValueError: a token file instead of images, or images of mixed sizes
      when no image size is given.
  """
  from maskgit_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  source = input_pipeline.make_source(dataset, split, data_dir)
  if isinstance(source, input_pipeline.TokenSource):
    raise ValueError(f"dataset {dataset!r} holds tokens; the probe needs "
                     "labelled images")
  count = len(source) if limit is None else min(limit, len(source))
  images, labels = [], []
  for index in range(count):
    image, label = source[index]
    if image_size is not None and image.shape[:2] != (image_size,) * 2:
      image = input_pipeline.center_crop(image, image_size)
    images.append(image)
    labels.append(label)
  if len({image.shape for image in images}) > 1:
    raise ValueError(f"dataset {dataset!r} has images of several sizes; "
                     "probe a checkpoint that has an image size")
  return np.stack(images), np.asarray(labels, np.int32), source.num_classes


def main(argv=None) -> int:
  from maskgit_jax.evaluation import representations  # pylint: disable=g-import-not-at-top
  parser = cli.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--features", required=True,
                      choices=representations.KINDS)
  parser.add_argument("--pooling", default=None,
                      choices=representations.POOLINGS,
                      help="mean over the image positions or flatten them "
                      "(default: mean for mage/maskgit, flatten for "
                      "tokenizer/pixels)")
  parser.add_argument("--checkpoint", default=None,
                      help="workdir of the model (not for --features=pixels)")
  parser.add_argument("--dataset", default="animal_mnist",
                      help="animal_mnist, tfds:<name> or folder:<path>")
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--train_split", default="train")
  parser.add_argument("--eval_split", default="test")
  parser.add_argument("--max_train", type=int, default=None,
                      help="use the first N training images")
  parser.add_argument("--epochs", type=int, default=90)
  parser.add_argument("--batch_size", type=int, default=256)
  parser.add_argument("--learning_rate", type=float, default=1e-3)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--output_json", default=None)

  def run(args) -> int:
    from maskgit_jax.evaluation import linear_probe  # pylint: disable=g-import-not-at-top
    settings = linear_probe.ProbeSettings(
        epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, seed=args.seed)
    if args.max_train is not None and args.max_train < 1:
      raise ValueError(f"--max_train must be positive, got {args.max_train}")
    if args.features == "pixels" and args.checkpoint:
      raise ValueError("--features=pixels takes no --checkpoint")
    if args.output_json and not storage.path(
        args.output_json).parent.is_dir():
      raise FileNotFoundError(f"--output_json folder "
                              f"{storage.path(args.output_json).parent} "
                              "does not exist")
    extract, size = representations.extractor(args.features, args.checkpoint,
                                              args.pooling)
    start = time.time()
    splits = {}
    for name, split, limit in (("train", args.train_split, args.max_train),
                               ("eval", args.eval_split, None)):
      images, labels, num_classes = load_split(
          args.dataset, split, args.data_dir, size, limit)
      splits[name] = (extract(images), labels)
      print(f"{name}: {len(labels)} images of {split!r}, features "
            f"{splits[name][0].shape[1]}", file=sys.stderr)
    result = linear_probe.probe(splits["train"], splits["eval"], num_classes,
                                settings)
    result.update(features=args.features, checkpoint=args.checkpoint,
                  pooling=args.pooling or representations.NATIVE[
                      args.features],
                  dataset=args.dataset, feature_dim=int(
                      splits["train"][0].shape[1]),
                  num_train=len(splits["train"][1]),
                  num_eval=len(splits["eval"][1]),
                  seconds=round(time.time() - start, 1))
    print(json.dumps(result))
    if args.output_json:
      storage.write_text(args.output_json, json.dumps(result, indent=1))
    return 0

  return cli.run_args(run, parser, argv)


if __name__ == "__main__":
  sys.exit(main())
