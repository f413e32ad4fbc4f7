"""TFDS datasets on a slice: ArrayRecord files, prepared by one process.

Training reads ``tfds:<name>`` with ``tfds.data_source`` (random access), which
needs the dataset's ArrayRecord files; TFDS's default build writes TFRecord,
which it cannot read. ArrayRecord files are opened as local files
(array_record 0.8 cannot open ``gs://``: google/array_record#120), so on a
slice ``data_dir`` is a bucket mounted on every host with Cloud Storage FUSE
(``gcsfuse --implicit-dirs BUCKET /mnt/gcs``) or a local disk. Prepare a
dataset once, before training::

    python -m maskgit_jax.data.tfds_data --name=imagenet2012 \
        --data_dir=/mnt/gcs/tensorflow_datasets --manual_dir=DOWNLOADS

(``tfds build imagenet2012 --file_format=array_record --data_dir=...`` is
the same where the ``tfds`` command runs; TFDS 4.9.10's command imports
apache-beam at start.) A dataset not prepared when training starts is
prepared by process 0 alone, in ArrayRecord, while the other processes wait;
a TFRecord-only build is refused in one line that says how to rebuild.
"""

from __future__ import annotations

import argparse
import logging
import sys

import jax
import numpy as np

from maskgit_jax.runtime import cli
from maskgit_jax.runtime import sharding
from maskgit_jax.runtime import storage


def _builder(name: str, data_dir):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  if data_dir and storage.is_remote(data_dir):
    raise ValueError(
        f"TFDS data_dir {data_dir} is an object store, which ArrayRecord "
        "files cannot be read from (google/array_record#120); mount it on "
        "every host with Cloud Storage FUSE (gcsfuse --implicit-dirs BUCKET "
        "/mnt/gcs) and pass the mounted path")
  try:
    return tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # tfds raises many types for an unknown dataset
    raise FileNotFoundError(
        f"TFDS dataset {name!r} is neither registered nor prepared in "
        f"data_dir {data_dir!r} ({type(e).__name__}: "
        f"{str(e).splitlines()[0] if str(e) else ''})") from e


def _prepare_command(name: str, data_dir) -> str:
  return (f"python -m maskgit_jax.data.tfds_data --name={name} "
          f"--data_dir={data_dir or '~/tensorflow_datasets'}")


def prepare(name: str, data_dir=None, manual_dir: str | None = None) -> bool:
  """Builds ``name`` in ArrayRecord unless it is prepared; True if it built.

  Raises:
    FileNotFoundError: an unknown dataset, or the build failed (for
      ImageNet: the manual-download files are not in ``manual_dir``).
    ValueError: a ``gs://`` data_dir (see the module docstring).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = _builder(name, data_dir)
  if builder.is_prepared():
    return False
  logging.info("preparing TFDS %s (ArrayRecord) in %s", name, data_dir)
  config = tfds.download.DownloadConfig(manual_dir=manual_dir)
  try:
    builder.download_and_prepare(file_format="array_record",
                                 download_config=config)
  except Exception as e:  # the builder's own errors: downloads, manual files
    raise FileNotFoundError(
        f"preparing TFDS {name!r} failed ({type(e).__name__}: "
        f"{str(e).splitlines()[0] if str(e) else ''}); prepare it by hand: "
        f"{_prepare_command(name, data_dir)} --manual_dir=...") from e
  return True


def _prepared_source(name: str, split: str, data_dir):
  """``(random-access split, builder, built here)``; process 0 prepares
  while the others wait."""
  built = bool(sharding.process_zero_first(
      lambda: prepare(name, data_dir), f"tfds prepare {name}"))
  builder = _builder(name, data_dir)
  try:
    return builder.as_data_source(split=split), builder, built
  except NotImplementedError as e:  # TFDS: no random-access file format
    formats = sorted(f.value for f in builder.info.available_file_formats())
    raise ValueError(
        f"TFDS {name!r} in {data_dir!r} holds {formats} files, which "
        "tfds.data_source cannot read; rebuild it as ArrayRecord into another "
        f"data_dir: {_prepare_command(name, 'NEW_DIR')}") from e
  except Exception as e:  # a missing split, or data absent on this host
    raise FileNotFoundError(
        f"TFDS {name!r} split {split!r} is not available in data_dir "
        f"{data_dir!r} on process {jax.process_index()} (splits: "
        f"{sorted(builder.info.splits)}; on a slice, data_dir must be "
        f"shared, e.g. gs://): {type(e).__name__}") from e


class TfdsSource:
  """A TFDS split as ``(image uint8 [H, W, 3], label)`` records."""

  def __init__(self, name: str, split: str, data_dir: str | None = None):
    self._source, builder, self.prepared_here = _prepared_source(
        name, split, data_dir)
    self.num_classes = int(builder.info.features["label"].num_classes)

  def __len__(self):
    return len(self._source)

  def __getitem__(self, index):
    record = self._source[int(index)]
    image = np.asarray(record["image"])
    if image.ndim == 2 or image.shape[-1] == 1:
      image = np.repeat(image.reshape(*image.shape[:2], 1), 3, axis=-1)
    return image, int(record["label"])


def main(argv=None) -> int:
  parser = cli.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--name", required=True, help="TFDS name, e.g. "
                      "imagenet2012")
  parser.add_argument("--data_dir", default=None, help="local or gs://")
  parser.add_argument("--manual_dir", default=None,
                      help="manually downloaded files (ImageNet's tars)")

  def run(args):
    built = prepare(args.name, args.data_dir, args.manual_dir)
    builder = _builder(args.name, args.data_dir)
    splits = {k: v.num_examples for k, v in builder.info.splits.items()}
    print(f"{'prepared' if built else 'already prepared'} {args.name} in "
          f"{args.data_dir}: {splits}")

  return cli.run_args(run, parser, argv)


if __name__ == "__main__":
  sys.exit(main())
