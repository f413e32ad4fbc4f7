"""Image data for both stages: sources, augmentation, per-process batches.

Sources (``config.data.name``):

* ``"animal_mnist"``: the 10,000 28x28 grey animal silhouettes of the
  ``animal-mnist`` package (installed with ``--no-deps``), read with an
  unpickler restricted to numpy arrays, padded to 32x32, repeated to RGB.
* ``"tfds:<name>"``: any TFDS image dataset through ``tfds.data_source``
  (random access, no TensorFlow needed; ArrayRecord files, prepared once
  with ``python -m maskgit_jax.data.tfds_data``: see :mod:`maskgit_jax.data.tfds_data`),
  e.g. ``tfds:imagenet2012`` or ``tfds:places365_small``.
* ``"folder:<path>"``: one subfolder per class of PNG/JPEG files.
* ``"tokens:<file.npz>"``: stage-2 tokens cached by
  ``python -m maskgit_jax.tools.pretokenize`` (batches carry ``tokens`` instead of
  ``images``; the flip augmentation picks the mirrored tokens).
* ``"latents:<file.npz>"``: a VAE tokenizer's latents cached the same way,
  times their ``latent_scale`` (batches carry ``latents``; the continuous
  stage).

Order is a pure function of ``(seed, batch index)``: epoch ``e`` is a
permutation of the split drawn from ``(seed, e)``; global batch ``b`` is a
fixed slice of it and process ``p`` loads its contiguous part. The global
batch is therefore the same whatever the number of processes, and the
iterator state is the next batch index (saved with every checkpoint).
Augmentation randomness is drawn from ``(seed, epoch, record)``.
"""

from __future__ import annotations

import dataclasses
import functools
import io
from typing import Iterator, Protocol

import grain
import jax
import numpy as np
from PIL import Image

from maskgit_jax.runtime import storage
from maskgit_jax.data import tfds_data
from maskgit_jax.data.animal_mnist import (  # pylint: disable=unused-import
    ANIMAL_MNIST_CLASSES, animal_mnist_split, load_animal_mnist)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class Source(Protocol):
  """Random access to ``(image uint8 [H, W, 3], label int)`` records."""

  num_classes: int

  def __len__(self) -> int: ...

  def __getitem__(self, index: int) -> tuple[np.ndarray, int]: ...


@dataclasses.dataclass
class ArraySource:
  """Records from in-memory arrays (animal-MNIST, tests)."""

  images: np.ndarray  # uint8 [N, H, W, 3]
  labels: np.ndarray  # int [N]
  num_classes: int

  def __len__(self):
    return len(self.labels)

  def __getitem__(self, index):
    return self.images[index], int(self.labels[index])


# ---------------------------------------------------------------------------
# TFDS and image folders


class FolderSource:
  """``root/<class>/<image>`` files; classes are the sorted subfolder names."""

  def __init__(self, root: str):
    root_path = storage.path(root)
    if not root_path.is_dir():
      raise FileNotFoundError(f"image folder {root} does not exist")
    self.classes = sorted(p.name for p in root_path.iterdir() if p.is_dir())
    self.files = [(f, label) for label, c in enumerate(self.classes)
                  for f in sorted((root_path / c).iterdir())
                  if f.suffix.lower() in IMAGE_SUFFIXES]
    if not self.files:
      raise FileNotFoundError(
          f"image folder {root} has no class subfolders with images "
          f"({', '.join(IMAGE_SUFFIXES)})")
    self.num_classes = len(self.classes)

  def __len__(self):
    return len(self.files)

  def __getitem__(self, index):
    path, label = self.files[int(index)]
    with Image.open(io.BytesIO(path.read_bytes())) as image:
      return np.asarray(image.convert("RGB")), label


def _load_cache(path: str, what: str, hint: str) -> dict:
  """The arrays of a ``pretokenize`` file, or a FileNotFoundError that says
  how to make it."""
  if not storage.path(path).exists():
    raise FileNotFoundError(f"{what} file {path} does not exist; make it with "
                            f"python -m maskgit_jax.tools.pretokenize{hint}")
  return storage.load_npz(path)


class TokenSource:
  """Cached tokens: records are ``(tokens [2, h, w] int32, label)``.

  Index 1 of the token pair is the mirror image's tokens.
  """

  def __init__(self, path: str):
    data = _load_cache(path, "token", "")
    if "tokens" not in data:
      what = ("continuous latents (a VAE tokenizer's)" if "latents" in data
              else "no 'tokens'")
      raise ValueError(f"{path} holds {what}; the token stages read token "
                       "ids (python -m maskgit_jax.tools.pretokenize)")
    self.tokens = np.asarray(data["tokens"], np.int32)
    self.labels = np.asarray(data["labels"], np.int32)
    self.num_classes = int(data["num_classes"])

  @property
  def grid(self) -> tuple[int, int]:
    return self.tokens.shape[-2:]

  def __len__(self):
    return len(self.labels)

  def __getitem__(self, index):
    return self.tokens[index], int(self.labels[index])


class LatentSource(TokenSource):
  """Cached continuous latents (a VAE tokenizer's, ``pretokenize``):
  records are ``(latents [2, h, w, C] float32, label)``, already multiplied
  by the file's ``latent_scale`` (1 / std: unit-scale tokens, as MAR).

  Index 1 of the pair is the mirror image's latents.
  """

  def __init__(self, path: str):  # pylint: disable=super-init-not-called
    data = _load_cache(path, "latent", " on a VAE tokenizer")
    if "latents" not in data:
      raise ValueError(f"{path} holds token ids, not continuous latents; "
                       "the continuous stage reads a VAE tokenizer's "
                       "(python -m maskgit_jax.tools.pretokenize)")
    self.latent_scale = float(data["latent_scale"])
    self.tokens = np.asarray(data["latents"], np.float32) * self.latent_scale
    self.labels = np.asarray(data["labels"], np.int32)
    self.num_classes = int(data["num_classes"])

  @property
  def grid(self) -> tuple[int, int]:
    return self.tokens.shape[2:4]


def make_source(name: str, split: str, data_dir: str | None = None) -> Source:
  """The source named by ``config.data.name`` (see the module docstring)."""
  if name == "animal_mnist":
    images, labels = load_animal_mnist()
    indices = animal_mnist_split(split)
    return ArraySource(images[indices], labels[indices],
                       len(ANIMAL_MNIST_CLASSES))
  if name.startswith("tfds:"):
    return tfds_data.TfdsSource(name[len("tfds:"):], split, data_dir)
  if name.startswith("folder:"):
    return FolderSource(name[len("folder:"):])
  if name.startswith("tokens:"):
    return TokenSource(name[len("tokens:"):])
  if name.startswith("latents:"):
    return LatentSource(name[len("latents:"):])
  raise ValueError(f"unknown dataset {name!r}; expected 'animal_mnist', "
                   "'tfds:<name>', 'folder:<path>', 'tokens:<file.npz>' or "
                   "'latents:<file.npz>'")


def batch_key(source: Source) -> str:
  """The batch entry a source fills: "images", or (cached) "tokens" or
  "latents"."""
  if isinstance(source, LatentSource):
    return "latents"
  return "tokens" if isinstance(source, TokenSource) else "images"


# ---------------------------------------------------------------------------
# Augmentation (numpy/PIL, per record)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
  if image.shape[0] == size and image.shape[1] == size:
    return image
  return np.asarray(Image.fromarray(image).resize((size, size),
                                                  Image.BICUBIC))


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
  """Largest central square, resized to ``size``."""
  h, w = image.shape[:2]
  side = min(h, w)
  top, left = (h - side) // 2, (w - side) // 2
  return _resize(image[top:top + side, left:left + side], size)


def random_resized_crop(image: np.ndarray, size: int,
                        rng: np.random.Generator, min_scale: float,
                        max_ratio: float = 4 / 3) -> np.ndarray:
  """Inception-style crop: area share in [min_scale, 1], aspect in [3/4, 4/3]."""
  h, w = image.shape[:2]
  for _ in range(10):
    area = h * w * rng.uniform(min_scale, 1.0)
    ratio = np.exp(rng.uniform(np.log(1 / max_ratio), np.log(max_ratio)))
    cw, ch = int(round(np.sqrt(area * ratio))), int(round(np.sqrt(area / ratio)))
    if 0 < cw <= w and 0 < ch <= h:
      top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
      return _resize(image[top:top + ch, left:left + cw], size)
  return center_crop(image, size)


@dataclasses.dataclass(frozen=True)
class Preprocess:
  """uint8 image -> float32 ``[size, size, 3]`` in [0, 1].

  Attributes:
    image_size: output side.
    train: random crop (if ``min_scale < 1``) and flip; else centre crop.
    min_scale: smallest crop area share for training (1.0: no cropping).
    flip: random horizontal flips in training.
  """

  image_size: int
  train: bool
  min_scale: float = 0.08
  flip: bool = True

  def __call__(self, image: np.ndarray, rng: np.random.Generator
               ) -> np.ndarray:
    if self.train and self.min_scale < 1.0:
      image = random_resized_crop(image, self.image_size, rng, self.min_scale)
    else:
      image = center_crop(image, self.image_size)
    if self.train and self.flip and rng.uniform() < 0.5:
      image = image[:, ::-1]
    return image.astype(np.float32) / 255.0


@dataclasses.dataclass(frozen=True)
class PickTokens:
  """Cached tokens ``[2, h, w]`` -> ``[h, w]``; a random flip picks the
  mirror's. ``views=2``: both, ``[2, h, w]``, the image's and the mirror's
  in random order (MAGE-C's two views)."""

  train: bool
  flip: bool = True
  views: int = 1

  def __call__(self, tokens: np.ndarray, rng: np.random.Generator
               ) -> np.ndarray:
    flip = self.train and self.flip and rng.uniform() < 0.5
    if self.views == 2:
      return tokens[[int(flip), 1 - int(flip)]]
    return tokens[int(flip)]


def make_preprocess(source: Source, *, image_size: int, train: bool,
                    min_scale: float = 0.08, flip: bool = True,
                    views: int = 1):
  """The per-record transform for ``source``'s records (images or tokens);
  ``views=2`` (cached tokens only): both views of each record."""
  if views not in (1, 2):
    raise ValueError(f"views must be 1 or 2, got {views}")
  if isinstance(source, TokenSource):
    return PickTokens(train=train, flip=flip, views=views)
  if views != 1:
    raise ValueError("two views of each image (MAGE-C) need cached tokens "
                     "(data.name 'tokens:...', from maskgit_jax.tools."
                     "pretokenize): their mirror is the second view")
  return Preprocess(image_size, train=train, min_scale=min_scale, flip=flip)


# ---------------------------------------------------------------------------
# Deterministic per-process batches


@dataclasses.dataclass(frozen=True)
class BatchPlan:
  """Which records go into global batch ``b`` and into this process's slice."""

  num_records: int
  global_batch: int
  seed: int
  process_index: int = 0
  process_count: int = 1

  def __post_init__(self):
    if self.global_batch % self.process_count:
      raise ValueError(f"global batch size {self.global_batch} is not "
                       f"divisible by the {self.process_count} processes")
    if self.num_records < self.global_batch:
      raise ValueError(f"dataset has {self.num_records} records, fewer than "
                       f"one batch of {self.global_batch}")

  @property
  def local_batch(self) -> int:
    return self.global_batch // self.process_count

  @property
  def batches_per_epoch(self) -> int:
    return self.num_records // self.global_batch  # drop the remainder

  @functools.lru_cache(maxsize=2)
  def permutation(self, epoch: int) -> np.ndarray:
    return np.random.default_rng([self.seed, epoch]).permutation(
        self.num_records)

  def local_indices(self, batch_index: int) -> tuple[int, np.ndarray]:
    """``(epoch, record indices [local_batch])`` of this process's slice."""
    epoch, b = divmod(batch_index, self.batches_per_epoch)
    start = b * self.global_batch + self.process_index * self.local_batch
    return epoch, self.permutation(epoch)[start:start + self.local_batch]


@dataclasses.dataclass(frozen=True)
class LocalBatchLoader:
  """Loads this process's slice of global batch ``b``: a grain map function."""

  source: Source
  plan: BatchPlan
  preprocess: Preprocess | PickTokens

  def __call__(self, batch_index: int) -> dict[str, np.ndarray]:
    epoch, indices = self.plan.local_indices(int(batch_index))
    images, labels = [], []
    for i in indices:
      image, label = self.source[int(i)]
      rng = np.random.default_rng([self.plan.seed, epoch, int(i)])
      images.append(self.preprocess(image, rng))
      labels.append(label)
    return {batch_key(self.source): np.stack(images),
            "labels": np.asarray(labels, np.int32)}


def local_batches(loader: LocalBatchLoader, start: int, *,
                  num_threads: int = 4, prefetch: int = 8
                  ) -> Iterator[dict[str, np.ndarray]]:
  """This process's batches ``start, start + 1, ...`` (read ahead by grain)."""
  dataset = grain.MapDataset.range(start, 2**62).map(loader)
  return iter(dataset.to_iter_dataset(grain.ReadOptions(
      num_threads=num_threads, prefetch_buffer_size=prefetch)))


def to_global(batch: dict[str, np.ndarray], sharding: jax.sharding.Sharding
              ) -> dict[str, jax.Array]:
  """Process-local numpy batch -> global arrays split over the batch axes."""
  return {k: jax.make_array_from_process_local_data(sharding, v)
          for k, v in batch.items()}
