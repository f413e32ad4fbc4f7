"""A tiny TFDS dataset (``tiny_shapes``: 8x8 RGB, 3 classes) for the
``tfds:`` source, and a worker that opens it on one of several processes.

Importing registers the builder. ``python -m tests.tiny_tfds DATA_DIR OUT``
(with ``MASKGIT_COORDINATOR`` etc. for several processes) opens the train
split and writes what this process saw to ``OUT``.
"""

import json
import pathlib
import sys

import numpy as np
import tensorflow_datasets as tfds

NUM_TRAIN = 12


class TinyShapes(tfds.core.GeneratorBasedBuilder):
  """Image ``i`` is filled with ``20 * i``; its label is ``i % 3``."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(8, 8, 3)),
        "label": tfds.features.ClassLabel(num_classes=3)}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples(NUM_TRAIN),
            "test": self._generate_examples(6)}

  def _generate_examples(self, n):
    for i in range(n):
      yield i, {"image": np.full((8, 8, 3), 20 * i, np.uint8), "label": i % 3}


def _worker(data_dir: str, out: str) -> None:
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  from maskgit_jax.runtime import sharding  # pylint: disable=g-import-not-at-top
  from maskgit_jax.data import tfds_data
  sharding.maybe_initialize_distributed()
  source = tfds_data.TfdsSource("tiny_shapes", "train", data_dir)
  pathlib.Path(out).write_text(json.dumps({
      "process": jax.process_index(), "prepared_here": source.prepared_here,
      "labels": [source[i][1] for i in range(len(source))]}))


if __name__ == "__main__":
  _worker(*sys.argv[1:])
