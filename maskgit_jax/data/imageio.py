"""Images and masks on disk, and grids of images (uint8 NHWC, PNG).

Conversions used at the library's edges: float images in [0, 1] inside,
uint8 ``[..., H, W, 3]`` outside.
"""

from __future__ import annotations

import io

from etils import epath
import numpy as np
from PIL import Image

from maskgit_jax.runtime import storage


def to_uint8(images) -> np.ndarray:
  """float ``[..., H, W, C]`` in [0, 1] -> uint8 (clipped, rounded)."""
  images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
  return (images * 255.0).round().astype(np.uint8)


def to_float(images) -> np.ndarray:
  """uint8 ``[..., H, W, C]`` -> float32 in [0, 1]."""
  images = np.asarray(images)
  if images.dtype != np.uint8:
    raise ValueError(f"images must be uint8 (0..255), got dtype {images.dtype}")
  return images.astype(np.float32) / 255.0


def image_grid(images: np.ndarray, columns: int) -> np.ndarray:
  """``[n, H, W, 3]`` (float in [0, 1] or uint8) -> uint8 ``[rows*H, columns*W, 3]``."""
  images = np.asarray(images)
  if images.dtype != np.uint8:
    images = to_uint8(images)
  n, h, w, c = images.shape
  rows = -(-n // columns)
  padded = np.zeros((rows * columns, h, w, c), np.uint8)
  padded[:n] = images
  grid = padded.reshape(rows, columns, h, w, c).transpose(0, 2, 1, 3, 4)
  return grid.reshape(rows * h, columns * w, c)


def read_image(path: storage.PathLike) -> np.ndarray:
  """An image file -> uint8 ``[H, W, 3]`` (RGB).

  Raises:
    FileNotFoundError / ValueError: a missing or unreadable file.
  """
  path = storage.require_file(path, "image")
  try:
    with Image.open(io.BytesIO(path.read_bytes())) as image:
      return np.asarray(image.convert("RGB"))
  except OSError as e:
    raise ValueError(f"{path} is not a readable image: {e}") from None


def read_mask(path: storage.PathLike) -> np.ndarray:
  """A mask image -> bool ``[H, W]``: True where a pixel is brighter than 127.

  White marks the region to generate, black what is kept.
  """
  path = storage.require_file(path, "mask")
  try:
    with Image.open(io.BytesIO(path.read_bytes())) as image:
      return np.asarray(image.convert("L")) > 127
  except OSError as e:
    raise ValueError(f"{path} is not a readable mask image: {e}") from None


def write_image(path: storage.PathLike, image: np.ndarray) -> epath.Path:
  """Writes uint8 ``[H, W, 3]`` (or float in [0, 1]); the format follows
  the suffix (PNG when unknown); makes parents; whole or not at all."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    image = to_uint8(image)
  buffer = io.BytesIO()
  image_format = Image.registered_extensions().get(
      storage.path(path).suffix.lower(), "PNG")
  Image.fromarray(image).save(buffer, format=image_format)
  return storage.write_bytes(path, buffer.getvalue())
