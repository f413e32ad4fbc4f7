"""Prints sample-quality metrics of a ``sample.py`` output file.

    # ImageNet: Inception features, against ADM's reference batch
    python -m maskgit_jax.evaluation --samples samples.npz \
        --reference VIRTUAL_imagenet256_labeled.npz \
        --inception_weights inception_fid.npz
    # small datasets: a classifier trained by the demo
    python -m maskgit_jax.evaluation --samples samples.npz \
        --reference test_images.npz --classifier demo_out/classifier.npz

Files are ``.npz``, local or ``gs://``. Images are ``arr_0`` (ADM's
format, what ``sample.py --num_samples`` writes) or ``images``; labels
``arr_1`` or ``labels``. The standard protocol: when the reference holds
precomputed ``mu`` and ``sigma`` (ADM's reference batches: the statistics
of the whole training set), FID is taken against those, and the
reference's images serve precision and recall only. Metrics: FID (Frechet
distance of the chosen features), Inception Score (of the network's
logits), precision and recall (k=3) and, with a classifier and labelled
samples, the class accuracy of the samples.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from maskgit_jax.runtime import cli
from maskgit_jax.runtime import storage
from maskgit_jax.evaluation import metrics


def read_images(path: storage.PathLike) -> dict[str, np.ndarray]:
  """An evaluation ``.npz``: ``images`` (uint8 [N, H, W, 3]) and extras.

  Accepts ADM's layout (``arr_0`` images, ``arr_1`` labels, ``mu`` and
  ``sigma``) and ours (``images``, ``labels``); ADM's names are returned
  as ``images`` and ``labels``.
  """
  storage.require_file(path, "evaluation file")
  arrays = storage.load_npz(path)
  for adm, ours in (("arr_0", "images"), ("arr_1", "labels")):
    if ours not in arrays and adm in arrays:
      arrays[ours] = arrays.pop(adm)
  if "images" not in arrays and "mu" not in arrays:
    raise ValueError(f"{path} has neither 'images' nor 'arr_0' nor 'mu' "
                     f"(keys: {sorted(arrays)})")
  if "images" in arrays:
    images = arrays["images"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"{path}: images must be uint8 [N, H, W, 3], got "
                       f"{images.dtype} {images.shape}")
  return arrays


def evaluate(samples: dict, reference: dict, network) -> dict[str, float]:
  """Metrics of ``samples`` vs ``reference`` with ``network``.

  FID uses the reference's ``mu``/``sigma`` when it has them, else the
  statistics of its images; precision and recall need its images.

  Args:
    network: ``images -> {"pool": features, "logits": logits}``.
  """
  fake = network(samples["images"])
  result = {"num_samples": len(samples["images"])}
  ref_stats = None
  from_stats = "mu" in reference and "sigma" in reference  # the protocol
  if from_stats:
    ref_stats = metrics.Statistics(np.asarray(reference["mu"], np.float64),
                                   np.asarray(reference["sigma"], np.float64))
  if "images" in reference:
    real = network(reference["images"])
    if ref_stats is None:
      ref_stats = metrics.Statistics.of(real["pool"])
    result["precision"], result["recall"] = metrics.precision_recall(
        real["pool"], fake["pool"])
  result["fid_reference"] = "mu_sigma" if from_stats else "reference_images"
  result["fid"] = metrics.frechet_distance(metrics.Statistics.of(fake["pool"]),
                                           ref_stats)
  result["inception_score"] = metrics.inception_score(fake["logits"])[0]
  if "labels" in samples and fake["logits"].shape[-1] < 1000:
    result["class_accuracy"] = float(
        (fake["logits"].argmax(-1) == samples["labels"]).mean())
  return result


def _network(args):
  if args.classifier:
    from maskgit_jax.evaluation import classifier  # pylint: disable=g-import-not-at-top
    return classifier.Classifier.load(args.classifier).outputs
  from maskgit_jax.evaluation import inception  # pylint: disable=g-import-not-at-top
  return inception.InceptionFeatures(
      inception.load_params(args.inception_weights))


def main(argv=None) -> int:
  parser = cli.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--samples", required=True, help="sample.py npz")
  parser.add_argument("--reference", required=True, help="reference npz")
  net = parser.add_mutually_exclusive_group(required=True)
  net.add_argument("--inception_weights", help="converted FID Inception npz")
  net.add_argument("--classifier", help="a classifier npz (demo_out/...)")
  parser.add_argument("--output_json", default=None)

  def run(args):
    result = evaluate(read_images(args.samples), read_images(args.reference),
                      _network(args))
    for key, value in result.items():
      print(f"{key:16s} {value:.4f}" if isinstance(value, float)
            else f"{key:16s} {value}")
    if args.output_json:
      storage.write_text(args.output_json, json.dumps(result, indent=2))

  return cli.run_args(run, parser, argv)


if __name__ == "__main__":
  sys.exit(main())
