"""What every sampler of token images shares: tokenizer, devices, batching.

:class:`TokenImages` holds a token model's and a tokenizer's params on a
data-parallel mesh, encodes and renders tokens, checks labels, and runs a
function over fixed-size row chunks with one traced program per shape.
:class:`~maskgit_jax.inference.generator.Generator` (MaskGIT) and
:class:`~maskgit_jax.inference.ar_generator.ARGenerator` (the
autoregressive prior) build on it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import numpy as np

from maskgit_jax.runtime import batching
from maskgit_jax.runtime import compile_cache
from maskgit_jax.runtime import restore
from maskgit_jax.data import imageio
from maskgit_jax.runtime import sharding
from maskgit_jax.decoding.parallel_decode import row_keys
from maskgit_jax.inference.options import Samples, label_array
from maskgit_jax.models import vqgan as vqgan_lib


class PerShape:
  """``fn(params, *inputs)`` traced (or loaded from the program cache) once
  per signature of ``inputs``: :func:`maskgit_jax.runtime.compile_cache.exported`.

  ``params`` is always the sampler's own (fixed) tree, so it is left out
  of the per-call lookup: flattening it would cost every call a share of a
  small batch's time (the exported program's key includes it).
  """

  def __init__(self, fn: Callable, closure: str):
    self.fn, self.closure = fn, closure
    self.programs: dict[tuple, Callable] = {}

  def __call__(self, params, *inputs):
    signature = compile_cache.signature(inputs)
    if signature not in self.programs:
      self.programs[signature] = compile_cache.exported(
          self.fn, (params,) + inputs, self.closure)
    return self.programs[signature](params, *inputs)


class TokenImages:
  """A token model and its tokenizer, placed on the devices.

  Attributes:
    tokenizer: the VQGAN; ``params["tokenizer"]`` its params.
    image_size, grid: the image side and the token grid ``(h, w)``.
    null_label: the null class of a model trained with label dropout.
    batch_size: rows per chunk (a multiple of the device count).
    params: the replicated params tree (``"tokenizer"`` and the model's).
  """

  def __init__(self, params: dict, tokenizer: vqgan_lib.VQGAN, *,
               image_size: int, num_classes: int,
               null_label: int | None, batch_size: int,
               devices: Sequence[jax.Device] | None):
    if image_size % tokenizer.factor:
      raise ValueError(f"image_size {image_size} is not a multiple of the "
                       f"token factor {tokenizer.factor}")
    self.tokenizer = tokenizer
    self.image_size = int(image_size)
    self.null_label = null_label
    self._num_classes = int(num_classes)
    grid = self.image_size // tokenizer.factor
    self.grid = (grid, grid)
    self.devices = list(devices or jax.local_devices())
    self._mesh = sharding.make_mesh((-1, 1, 1), self.devices)
    self._rows = sharding.batch_sharding(self._mesh)
    n = len(self.devices)
    self.batch_size = -(-max(int(batch_size), 1) // n) * n
    params = nn.unbox(params)  # e.g. straight from model.init
    self.params = jax.device_put(params, sharding.replicated(self._mesh))
    self._jitted: dict[tuple, Callable] = {}

  @property
  def num_classes(self) -> int:
    """Classes a user may ask for (the null class excluded)."""
    return self._num_classes - (self.null_label is not None)

  @property
  def layout(self):
    """The model's :class:`~maskgit_jax.decoding.tokens.TokenLayout`."""
    return self._model().layout

  def _model(self):
    raise NotImplementedError

  @property
  def factor(self) -> int:
    """Pixels per token side."""
    return self.tokenizer.factor

  def check_labels(self, labels) -> np.ndarray:
    """int32 ``[n]``; raises ValueError for labels outside the model's classes."""
    arr = label_array(labels)
    bad = arr[(arr < 0) | (arr >= self.num_classes)]
    if bad.size:
      raise ValueError(f"label {int(bad[0])} is out of range: this model has "
                       f"{self.num_classes} classes (0..{self.num_classes - 1})")
    return arr

  def masked_sequences(self, labels: np.ndarray) -> np.ndarray:
    """int32 ``[n, 1 + h * w]``: each label's class token, then all masks."""
    layout = self.layout  # numpy: the eager jnp version costs ~1 ms a call
    labels = np.asarray(labels, np.int32).reshape(-1, 1)
    masks = np.full((len(labels), self.grid[0] * self.grid[1]),
                    layout.mask_id, np.int32)
    return np.concatenate([labels + layout.codebook_size, masks], axis=1)

  def encode(self, images) -> np.ndarray:
    """uint8 ``[n, H, W, 3]`` -> int32 tokens ``[n, h, w]``."""
    fn = self._jit(("encode",), lambda p, x: self.tokenizer.apply(
        {"params": p["tokenizer"]}, x, method=self.tokenizer.encode_to_indices))
    return self._batched(fn, [imageio.to_float(images)])[0]

  def decode_tokens(self, tokens) -> np.ndarray:
    """int ``[n, h, w]`` -> float32 images ``[n, H, W, 3]`` (not clipped)."""
    fn = self._jit(("render",), lambda p, t: self.tokenizer.apply(
        {"params": p["tokenizer"]}, t,
        method=self.tokenizer.decode_from_indices))
    return self._batched(fn, [np.asarray(tokens, np.int32)])[0]

  # -- the row-sampling skeleton both generators share ----------------------

  def options(self, **overrides):
    """The default options with ``overrides`` (None values ignored)."""
    return self.defaults.replace(**overrides)

  def generate(self, labels, *, seed: int = 0, progress=None,
               **options) -> np.ndarray:
    """Class-conditional samples: uint8 ``[len(labels), H, W, 3]``;
    ``options`` as in :meth:`sample`."""
    return self.sample(labels, seed=seed, progress=progress,
                       **options).images

  def sample_unconditional(self, num_samples: int, *, seed: int = 0,
                           progress=None, **options) -> Samples:
    """``num_samples`` samples of p(x): every row conditioned on the class
    token that says nothing (:func:`restore.unconditional_label`: the null
    class of a guidance-trained model, class 0 of a one-class one), so a
    class-conditional model trained with label dropout samples as an
    unconditional one. Row ``i`` uses ``fold_in(PRNGKey(seed), i)``.
    ``options`` as in :meth:`sample`, without guidance (it would contrast
    the null class with itself); ``Samples.labels`` holds that class.

    Raises:
      ValueError: a class-conditional model without a null class, a
        ``num_samples`` below 1, or a nonzero ``cfg_scale``.
    """
    label = self.unconditional_label
    if int(num_samples) < 1:
      raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if options.get("cfg_scale"):
      raise ValueError(
          f"cfg_scale={options['cfg_scale']}: unconditional samples take no "
          "guidance (it would contrast the null class with itself)")
    opts = self.checked_options(**dict(options, cfg_scale=0.0))
    return self._sample_labels(np.full(int(num_samples), label, np.int32),
                               seed, opts, progress)

  @property
  def unconditional_label(self) -> int:
    """The class token that says nothing (:func:`restore.unconditional_label`)."""
    return restore.unconditional_label(self._num_classes, self.null_label)

  def _sample_labels(self, labels: np.ndarray, seed: int, opts,
                     progress=None) -> Samples:
    """Samples of checked int32 ``[n]`` labels with checked options: each
    row's class token, then all masks, decoded."""
    return self.decode_sequences(self.masked_sequences(labels), labels, seed,
                                 opts, progress)

  def decode_sequences(self, sequences, labels, seed, opts, progress=None,
                       *, index_offset: int = 0) -> Samples:
    """Fills the mask ids of int ``[n, 1 + h * w]`` sequences; row ``i``
    uses ``fold_in(PRNGKey(seed), index_offset + i)``, whatever the batch.
    ``opts``: this generator's options (``static()`` selects the program,
    ``traced()`` are its arguments)."""
    sequences = self._checked_sequences(np.asarray(sequences, np.int32))
    fn = self._jit((type(self).__name__,) + opts.static(),
                   lambda p, s, k, t: self._decode_images(opts, t, p, s, k))
    keys = row_keys(seed, np.arange(len(sequences), dtype=np.uint32)
                    + np.uint32(index_offset))
    traced = opts.traced()
    tokens, images = self._batched(
        lambda p, s, k: fn(p, s, k, traced),
        [sequences, np.asarray(keys)], progress=progress)
    return Samples(images=imageio.to_uint8(images),
                   tokens=tokens.astype(np.int32),
                   labels=np.asarray(labels, np.int32), float_images=images)

  def regenerate(self, images: np.ndarray, token_masks: np.ndarray,
                 labels: np.ndarray, seed: int, opts, *,
                 index_offset: int = 0) -> np.ndarray:
    """float32 ``[n, H, W, 3]`` (unclipped): uint8 ``images`` with the
    True tokens of bool ``token_masks [n, h, w]`` decoded afresh (the
    editing tasks composite them; :mod:`.edit_tasks`)."""
    sequences = np.asarray(self.layout.make_sequence(
        labels, self.encode(images), mask=token_masks))
    return self.decode_sequences(sequences, labels, seed, opts,
                                 index_offset=index_offset).float_images

  def _checked_sequences(self, sequences: np.ndarray) -> np.ndarray:
    """Refuses sequences this model cannot fill (a prior: masks not at the
    end); returns them."""
    return sequences

  def _decode_images(self, opts, traced: dict, params, sequences, keys):
    """``(tokens [n, h, w], float images)`` inside the compiled program."""
    raise NotImplementedError

  def _render(self, params, final: jax.Array):
    """``(tokens, images)`` of decoded sequences ``[n, 1 + h * w]``."""
    tokens = final[:, 1:].reshape(-1, *self.grid)
    return tokens, self.tokenizer.apply(
        {"params": params["tokenizer"]}, tokens,
        method=self.tokenizer.decode_from_indices)

  def _closure(self) -> tuple:
    """What the traced programs depend on besides their key and inputs."""
    return (self.tokenizer, self.null_label)

  def _jit(self, key: tuple, fn: Callable) -> Callable:
    """``fn`` compiled per argument shapes; with the compilation cache on,
    its traced programs are kept on disk too (a new process skips tracing;
    see :func:`maskgit_jax.runtime.compile_cache.exported`)."""
    if key not in self._jitted:
      self._jitted[key] = PerShape(fn, repr((key,) + self._closure()))
    return self._jitted[key]

  def _batched(self, fn, arrays: list[np.ndarray], *, progress=None
               ) -> list[np.ndarray]:
    """``fn(params, *chunks)`` over fixed-size row chunks sharded over the
    devices (see :func:`maskgit_jax.runtime.batching.map_chunks`)."""
    total = len(arrays[0])
    size = min(self.batch_size, -(-total // self._mesh.size) * self._mesh.size)
    result = batching.map_chunks(
        lambda *chunk: fn(self.params, *chunk), arrays, size,
        put=lambda chunk: jax.device_put(chunk, self._rows),
        progress=progress)
    return list(result) if isinstance(result, tuple) else [result]
