"""Editing with a Generator: inpaint, box edit, outpaint, panorama.

Each function is also a :class:`~maskgit_jax.inference.generator.Generator`
method (``gen.inpaint(...)``); all of them are the one decode started from a
partly masked token grid (:mod:`maskgit_jax.decoding.editing` holds the pure parts).
Inputs and outputs are uint8 images; pixels outside the regenerated tokens
come back exactly as they went in.
"""

from __future__ import annotations

import numpy as np

from maskgit_jax.decoding import editing
from maskgit_jax.data import imageio
from maskgit_jax.inference.token_images import TokenImages
from maskgit_jax.inference.options import label_array


def inpaint(gen: TokenImages, image, mask, *, label=None, seed: int = 0,
            widen: int = 0, sigma: float = 1.0, **options) -> np.ndarray:
  """Regenerates the masked pixels of model-size images.

  Args:
    gen: the generator.
    image: uint8 ``[H, W, 3]`` or ``[n, H, W, 3]`` with ``H = W =
      image_size``.
    mask: bool ``[H, W]`` or ``[n, H, W]``: True where content is made.
      Tokens touching the mask are regenerated (``widen`` more tokens
      around them), and the result is blended in with a feathered edge.
    label: class(es) to condition on (default: the null class of a
      guidance-trained model, [C] of an unconditional one such as MAGE;
      other models need one).
    seed, **options: as in ``Generator.sample``.

  Returns:
    uint8 like ``image``; pixels outside the regenerated tokens are the
    input's, exactly.
  """
  images, single = _model_size_images(gen, image)
  masks = np.asarray(mask, bool)
  if masks.shape[-2:] != images.shape[1:3]:
    raise ValueError(f"mask shape {masks.shape} does not match the "
                     f"{images.shape[1]}x{images.shape[2]} image")
  masks = np.broadcast_to(masks, images.shape[:3])
  token_masks = np.stack([editing.pixel_mask_to_token_mask(
      m, gen.factor, widen=widen) for m in masks])
  if not token_masks.reshape(len(images), -1).any(-1).all():
    raise ValueError("the mask is empty (no True pixel): nothing to inpaint")
  out = _edit(gen, images, token_masks, label, seed,
              gen.checked_options(**options), sigma=sigma)
  return out[0] if single else out


def edit(gen: TokenImages, image, box, *, label, seed: int = 0,
         sigma: float = 1.0, **options) -> np.ndarray:
  """Class-conditional box editing (the official Colab's recipe).

  The box ``(top, left, height, width)`` in pixels is widened by one token;
  options the call leaves out come from ``gen.edit_defaults`` (MaskGIT: 12
  iterations starting at iteration 2, as officially).

  Returns:
    uint8 like ``image``.
  """
  images, single = _model_size_images(gen, image)
  token_mask = editing.box_to_token_mask(box, images.shape[1:3], gen.factor,
                                         widen=1)
  given = {k for k, v in options.items() if v is not None}
  opts = gen.checked_options(**options)
  opts = opts.replace(**{k: v for k, v in gen.edit_defaults.items()
                         if k not in given})
  token_masks = np.broadcast_to(token_mask, (len(images),) + token_mask.shape)
  out = _edit(gen, images, token_masks, label, seed, opts, sigma=sigma)
  return out[0] if single else out


def outpaint(gen: TokenImages, image, extend, *, label=None, seed: int = 0,
             **options) -> np.ndarray:
  """Extends images beyond their borders.

  The canvas grows by ``extend`` pixels: an int for every side or
  ``(top, bottom, left, right)``, each a multiple of the token factor. The
  new area is filled window by window (model-size windows overlapping
  half a window), always at the window with the most known content, so
  every step is conditioned on what exists.

  Returns:
    uint8 ``[(n,) H + top + bottom, W + left + right, 3]``; the input's
    pixels are kept exactly.
  """
  images, single = _model_size_images(gen, image)
  if np.ndim(extend) == 0:
    extend = (extend,) * 4
  extend = tuple(int(e) for e in extend)
  if len(extend) != 4 or min(extend) < 0 or not any(extend):
    raise ValueError(f"extend must be a non-negative int or (top, bottom, "
                     f"left, right) with one side > 0, got {extend}")
  if any(e % gen.factor for e in extend):
    raise ValueError(f"extend {extend} must be multiples of the token "
                     f"factor {gen.factor}")
  top, bottom, left, right = extend
  n, h, w, _ = images.shape
  canvas = np.zeros((n, h + top + bottom, w + left + right, 3), np.uint8)
  canvas[:, top:top + h, left:left + w] = images
  known = np.zeros(canvas.shape[1:3], bool)
  known[top:top + h, left:left + w] = True
  out = _fill(gen, canvas, known, label, seed, gen.checked_options(**options))
  return out[0] if single else out


def panorama(gen: TokenImages, image, width: int, *, label=None,
             seed: int = 0, **options) -> np.ndarray:
  """Repeated outpainting to the right until the image is ``width`` wide."""
  images, _ = _model_size_images(gen, image)
  if int(width) <= images.shape[2]:
    raise ValueError(f"panorama width {width} must exceed the image width "
                     f"{images.shape[2]}")
  return outpaint(gen, image, (0, 0, 0, int(width) - images.shape[2]),
                  label=label, seed=seed, **options)


def _edit_labels(gen: TokenImages, label, n: int) -> np.ndarray:
  if label is None:
    if gen.num_classes > 1 and gen.null_label is None:
      raise ValueError(
          f"this model is class-conditional: pass label= (0.."
          f"{gen.num_classes - 1})")
    return np.full((n,), gen.unconditional_label, np.int32)
  return gen.check_labels(label_array(label, n))


def _model_size_images(gen: TokenImages, image) -> tuple[np.ndarray, bool]:
  images = np.asarray(image)
  single = images.ndim == 3
  if single:
    images = images[None]
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"image must be [H, W, 3] or [n, H, W, 3] RGB, got "
                     f"shape {np.shape(image)}")
  if images.dtype != np.uint8:
    raise ValueError(f"image must be uint8, got dtype {images.dtype}")
  h, w = images.shape[1:3]
  if h % gen.factor or w % gen.factor:
    raise ValueError(f"image size {h}x{w} is not a multiple of the token "
                     f"factor {gen.factor}")
  if (h, w) != (gen.image_size, gen.image_size):
    raise ValueError(
        f"image is {h}x{w} but this model works on {gen.image_size}x"
        f"{gen.image_size} images (resize it; outpaint/panorama grow it)")
  return images, single


def _edit(gen: TokenImages, images, token_masks, label, seed,
          opts, *, sigma, index_offset: int = 0) -> np.ndarray:
  """Regenerates ``token_masks`` of model-size uint8 images; composites."""
  labels = _edit_labels(gen, label, len(images))
  drawn = gen.regenerate(images, token_masks, labels, seed, opts,
                         index_offset=index_offset)
  out = np.empty_like(images)
  original = imageio.to_float(images)
  for i, token_mask in enumerate(token_masks):
    region = editing.token_mask_to_pixels(token_mask, gen.factor)
    blend = editing.feathered_composite(
        original[i], np.clip(drawn[i], 0.0, 1.0), region,
        sigma=sigma)
    out[i] = np.where(region[..., None], imageio.to_uint8(blend), images[i])
  return out


def _fill(gen: TokenImages, canvas, known, label, seed, opts) -> np.ndarray:
  """Fills ``~known`` pixels of ``canvas`` with model-size windows."""
  size, f = gen.image_size, gen.factor
  stride = max(size // 2 // f, 1) * f

  def starts(extent):
    last = extent - size
    return sorted(set(range(0, last + 1, stride)) | {last})

  windows = [(r, c) for r in starts(canvas.shape[1])
             for c in starts(canvas.shape[2])]
  count = 0
  while not known.all():
    def score(rc):
      r, c = rc
      window = known[r:r + size, c:c + size]
      return (not window.all(), window.sum())
    r, c = max(windows, key=score)
    window_known = known[r:r + size, c:c + size]
    token_mask = ~window_known.reshape(
        size // f, f, size // f, f).all((1, 3))
    patch = canvas[:, r:r + size, c:c + size]
    masks = np.broadcast_to(token_mask, (len(canvas),) + token_mask.shape)
    # Hard edges: the surroundings are exact, so only new pixels change.
    filled = _edit(gen, patch, masks, label, seed, opts, sigma=0.0,
                   index_offset=count * len(canvas))
    new = ~window_known
    canvas[:, r:r + size, c:c + size][:, new] = filled[:, new]
    known[r:r + size, c:c + size] = True
    count += 1
  return canvas
