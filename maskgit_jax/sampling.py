"""From a checkpoint to images: generation and editing with uint8 in and out.

    from maskgit_jax import sampling
    gen = sampling.Generator.from_checkpoint("runs/maskgit")
    images = gen.generate([3, 7], seed=0)        # uint8 [2, H, W, 3]
    filled = gen.inpaint(image, mask, label=3)   # mask: bool [H, W]
    edited = gen.edit(image, (8, 8, 16, 16), label=5)
    wide = gen.panorama(image, width=3 * image.shape[1], label=5)

Every sample ``i`` draws its randomness from ``fold_in(PRNGKey(seed), i)``,
so a sample depends on its seed, index, label and options only, not on the
batch size or the number of devices. Each decode is jitted once per
(batch shape, static options) and runs data-parallel over the local devices;
temperatures, guidance scale and start step are traced (changing them does
not recompile).

Beyond the paper, opt-in: classifier-free guidance (``cfg_scale``, for
models trained with ``masking.label_dropout > 0``) and the classifier-based
rejection sampling of the paper's Appendix B (``Generator.sample(...,
classifier=...)``).
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from scipy import special

from maskgit_jax import batching
from maskgit_jax import checkpointing
from maskgit_jax import editing
from maskgit_jax import imageio
from maskgit_jax import masking
from maskgit_jax import parallel_decode
from maskgit_jax.models import transformer as transformer_lib
from maskgit_jax.models import vqgan as vqgan_lib

CFG_SCHEDULES = ("constant", "linear")

Classifier = Callable[[np.ndarray], np.ndarray]
"""uint8 images ``[n, H, W, 3]`` -> logits ``[n, num_classes]``."""


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
  """How tokens are decoded (paper Section 3.2).

  Attributes:
    num_steps: T, the number of decoding iterations.
    schedule: mask schedule name (:data:`maskgit_jax.masking.SCHEDULES`).
    choice_temperature: Gumbel temperature of the confidence ranking
      (official 4.5; 0 keeps the most confident tokens deterministically).
    temperature: sampling temperature of the token distribution.
    greedy: take the most likely token instead of sampling.
    cfg_scale: classifier-free guidance scale ``s`` in ``cond + s * (cond -
      uncond)``; 0 disables guidance (and its second forward pass).
    cfg_schedule: ``constant``, or ``linear``: the scale grows with the
      share of tokens already decoded (no guidance on an all-masked grid).
    start_step: first iteration to run (the official box edit starts at 2
      of 12).
    sampler: how tokens are drawn: ``"cdf"`` (one uniform number per
      token; the default) or ``"gumbel"`` (the official Gumbel-max, one
      number per token and code: the same distribution at 20-40% of a
      forward pass per step on CPU, see ``benchmarks/RESULTS.md``); see
      :func:`maskgit_jax.parallel_decode.sample_tokens`.
  """

  num_steps: int = 8
  schedule: str = "cosine"
  choice_temperature: float = 4.5
  temperature: float = 1.0
  greedy: bool = False
  cfg_scale: float = 0.0
  cfg_schedule: str = "constant"
  start_step: int = 0
  sampler: str = "cdf"

  def validate(self) -> "DecodeOptions":
    if (isinstance(self.num_steps, bool) or
        int(self.num_steps) != self.num_steps or self.num_steps < 1):
      raise ValueError(f"num_steps must be a positive integer, got "
                       f"{self.num_steps}")
    masking.validate_schedule(self.schedule)
    if not 0 <= self.start_step < self.num_steps:
      raise ValueError(f"start_step must lie in [0, num_steps={self.num_steps})"
                       f", got {self.start_step}")
    if self.choice_temperature < 0:
      raise ValueError(f"choice_temperature must be >= 0, got "
                       f"{self.choice_temperature}")
    if not self.greedy and not self.temperature > 0:
      raise ValueError(f"temperature must be > 0 (or use greedy), got "
                       f"{self.temperature}")
    if self.cfg_schedule not in CFG_SCHEDULES:
      raise ValueError(f"cfg_schedule must be one of {CFG_SCHEDULES}, got "
                       f"{self.cfg_schedule!r}")
    if self.sampler not in parallel_decode.SAMPLERS:
      raise ValueError(f"sampler must be one of {parallel_decode.SAMPLERS}, "
                       f"got {self.sampler!r}")
    return self


@dataclasses.dataclass(frozen=True)
class Samples:
  """Generated images with their tokens and labels.

  Attributes:
    images: uint8 ``[n, H, W, 3]``.
    tokens: int32 ``[n, h, w]``.
    labels: int32 ``[n]``.
    float_images: float32 ``[n, H, W, 3]``: the tokenizer's output, not
      clipped to [0, 1] (``images`` is it clipped and rounded).
  """

  images: np.ndarray
  tokens: np.ndarray
  labels: np.ndarray
  float_images: np.ndarray

  def save_npz(self, path: str | pathlib.Path) -> pathlib.Path:
    """Writes ``images``, ``tokens`` and ``labels`` (the FID tools read it)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=self.images, tokens=self.tokens, labels=self.labels)
    return path


@dataclasses.dataclass(frozen=True)
class GuidedLogits:
  """Classifier-free guidance around a ``tokens_to_logits`` function.

  ``params`` is ``{"model": model params, "cfg_scale": scalar}``; the
  unconditional pass replaces the class token by the null class token.
  """

  logits_fn: Callable[[Any, jax.Array], jax.Array]
  null_token: int
  mask_id: int
  ramp: str = "constant"

  def __call__(self, params, ids: jax.Array) -> jax.Array:
    batch = ids.shape[0]
    uncond = ids.at[:, 0].set(self.null_token)
    both = self.logits_fn(params["model"], jnp.concatenate([ids, uncond], 0))
    cond, free = both[:batch], both[batch:]
    scale = jnp.asarray(params["cfg_scale"], jnp.float32)
    if self.ramp == "linear":
      decoded = jnp.mean(ids[:, 1:] != self.mask_id, axis=-1)
      scale = scale * decoded[:, None, None]
    return cond + scale * (cond - free)


def _label_array(labels, num: int | None = None) -> np.ndarray:
  arr = np.asarray(labels)
  if arr.dtype.kind not in "iu" and arr.size:
    raise ValueError(f"labels must be integers, got {labels!r}")
  arr = arr.astype(np.int32).reshape(-1)
  if num is not None and arr.size == 1:
    arr = np.repeat(arr, num)
  if num is not None and arr.size != num:
    raise ValueError(f"got {arr.size} labels for {num} images")
  return arr


class Generator:
  """A trained MaskGIT (transformer + tokenizer) ready to sample and edit."""

  def __init__(self, transformer: transformer_lib.Transformer,
               transformer_params, tokenizer: vqgan_lib.VQGAN,
               tokenizer_params, *, image_size: int,
               null_label: int | None = None,
               defaults: DecodeOptions | None = None, batch_size: int = 64,
               devices: Sequence[jax.Device] | None = None):
    """Wraps models and params; most users call :meth:`from_checkpoint`.

    Args:
      transformer, transformer_params: the stage-2 model and its params.
      tokenizer, tokenizer_params: the VQGAN and its params.
      image_size: the side of the square images the transformer generates.
      null_label: the null class of a model trained with label dropout.
      defaults: decode options used where a call leaves them out.
      batch_size: images per device batch (rounded up to a multiple of the
        device count).
      devices: where to run (default: all local devices, data-parallel).
    """
    if image_size % tokenizer.factor:
      raise ValueError(f"image_size {image_size} is not a multiple of the "
                       f"token factor {tokenizer.factor}")
    self.transformer = transformer
    self.tokenizer = tokenizer
    self.image_size = int(image_size)
    self.null_label = null_label
    self.defaults = (defaults or DecodeOptions()).validate()
    grid = self.image_size // tokenizer.factor
    self.grid = (grid, grid)
    if grid * grid + 1 != transformer.max_position_embeddings:
      raise ValueError(
          f"a {image_size}px image makes {grid}x{grid} tokens but the "
          f"transformer has {transformer.max_position_embeddings - 1} image "
          "positions")
    devices = list(devices or jax.local_devices())
    self.devices = devices
    self._mesh = Mesh(np.array(devices), ("data",))
    self._rows = NamedSharding(self._mesh, P("data"))
    self.batch_size = -(-max(int(batch_size), 1) // len(devices)) * len(devices)
    self.params = jax.device_put(
        {"transformer": transformer_params, "tokenizer": tokenizer_params},
        NamedSharding(self._mesh, P()))
    self._jitted: dict[tuple, Callable] = {}

  # -- construction ---------------------------------------------------------

  @classmethod
  def from_checkpoint(cls, path: str | pathlib.Path, *, use_ema: bool = True,
                      step: int | None = None, **kwargs) -> "Generator":
    """Loads a stage-2 training workdir or a directory from ``official``.

    Args:
      path: the directory holding ``checkpoints/``.
      use_ema: use the EMA params when the checkpoint has them.
      step: the checkpoint step (default: the latest).
      **kwargs: passed to the constructor (``batch_size``, ``devices``).

    Raises:
      FileNotFoundError: no checkpoint at ``path`` or at its tokenizer's.
      ValueError: the checkpoint is not a stage-2 (transformer) one.
    """
    # Imported here: trainers read configs; the Generator reuses their
    # config -> model mapping so that both build the same model.
    from maskgit_jax.trainers import tasks  # pylint: disable=g-import-not-at-top
    directory = pathlib.Path(path)
    if not (directory / "checkpoints").is_dir():
      raise FileNotFoundError(
          f"checkpoint {path} not found (expected a stage-2 training workdir "
          "or an imported directory, with a checkpoints/ folder)")
    config = checkpointing.read_config(directory, step)
    if config.get("stage") != "transformer":
      raise ValueError(
          f"checkpoint {path} is a {config.get('stage')!r} checkpoint; "
          "sampling needs the stage-2 (transformer) workdir")
    transformer, null_label = tasks.transformer_from_config(config)
    tokenizer, tokenizer_params = tasks.load_tokenizer(
        _resolve(config.get("tokenizer_checkpoint"), directory))
    state = checkpointing.restore_state_tree(directory, step)
    params = state.get("ema_params") if use_ema else None
    decode = config.get("decode") or {}
    defaults = DecodeOptions(
        num_steps=int(decode.get("num_iter", 8)),
        schedule=decode.get("schedule", "cosine"),
        choice_temperature=float(decode.get("choice_temperature", 4.5)),
        temperature=float(decode.get("temperature", 1.0)),
        cfg_scale=(float(decode.get("cfg_scale") or 0.0)
                   if null_label is not None else 0.0),
        cfg_schedule=decode.get("cfg_schedule", "constant"))
    return cls(transformer, params if params is not None else state["params"],
               tokenizer, tokenizer_params,
               image_size=int(config["image_size"]), null_label=null_label,
               defaults=defaults, **kwargs)

  # -- properties -----------------------------------------------------------

  @property
  def num_classes(self) -> int:
    """Classes a user may ask for (the null class excluded)."""
    return self.transformer.num_classes - (self.null_label is not None)

  @property
  def factor(self) -> int:
    """Pixels per token side."""
    return self.tokenizer.factor

  def options(self, **overrides) -> DecodeOptions:
    """The default decode options with ``overrides`` (None values ignored)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - {f.name for f in dataclasses.fields(
        DecodeOptions)}
    if unknown:
      raise TypeError(f"unknown decode options {sorted(unknown)}")
    return dataclasses.replace(self.defaults, **overrides).validate()

  def check_labels(self, labels) -> np.ndarray:
    """int32 ``[n]``; raises ValueError for labels outside the model's classes."""
    arr = _label_array(labels)
    bad = arr[(arr < 0) | (arr >= self.num_classes)]
    if bad.size:
      raise ValueError(f"label {int(bad[0])} is out of range: this model has "
                       f"{self.num_classes} classes (0..{self.num_classes - 1})")
    return arr

  # -- generation -----------------------------------------------------------

  def generate(self, labels, *, seed: int = 0, progress=None,
               **options) -> np.ndarray:
    """Class-conditional samples: uint8 ``[len(labels), H, W, 3]``.

    Keyword options are the fields of :class:`DecodeOptions`.
    """
    return self.sample(labels, seed=seed, progress=progress,
                       **options).images

  def sample(self, labels, *, seed: int = 0, progress=None,
             classifier: Classifier | None = None,
             acceptance_rate: float = 0.05, **options) -> Samples:
    """Samples with tokens; optionally with classifier rejection sampling.

    Args:
      labels: int ``[n]`` classes to generate.
      seed: sample ``i`` uses ``fold_in(PRNGKey(seed), i)``.
      progress: a callable ``(done, total)`` called after every batch.
      classifier: when given, ``ceil(1 / acceptance_rate)`` candidates are
        drawn per sample and the one the classifier finds most likely to be
        of its class is kept (the paper's Appendix B with rate 0.05).
      acceptance_rate: share of candidates kept, in (0, 1].
      **options: :class:`DecodeOptions` fields.
    """
    labels = self.check_labels(labels)
    opts = self._guidance_checked(self.options(**options))
    if classifier is None:
      sequences = np.asarray(self.transformer.layout.masked_sequence(
          labels, self.grid[0] * self.grid[1]))
      return self._decode(sequences, labels, seed, opts, progress)
    return self._rejection_sample(labels, seed, opts, progress, classifier,
                                  acceptance_rate)

  def _rejection_sample(self, labels, seed, opts, progress, classifier,
                        acceptance_rate) -> Samples:
    if not 0 < acceptance_rate <= 1:
      raise ValueError(f"acceptance_rate must lie in (0, 1], got "
                       f"{acceptance_rate}")
    per = math.ceil(1.0 / acceptance_rate)
    candidates = np.repeat(labels, per)
    drawn = self._decode(
        np.asarray(self.transformer.layout.masked_sequence(
            candidates, self.grid[0] * self.grid[1])),
        candidates, seed, opts, progress)
    logits = np.asarray(classifier(drawn.images), np.float64)
    if logits.shape != (len(candidates), logits.shape[-1]):
      raise ValueError(f"the classifier returned shape {logits.shape}; "
                       f"expected [{len(candidates)}, num_classes]")
    log_probs = special.log_softmax(logits, axis=-1)
    score = log_probs[np.arange(len(candidates)), candidates]
    best = score.reshape(len(labels), per).argmax(-1) + per * np.arange(
        len(labels))
    return Samples(images=drawn.images[best], tokens=drawn.tokens[best],
                   labels=labels, float_images=drawn.float_images[best])

  # -- editing --------------------------------------------------------------

  def inpaint(self, image, mask, *, label=None, seed: int = 0,
              widen: int = 0, sigma: float = 1.0, **options) -> np.ndarray:
    """Regenerates the masked pixels of model-size images.

    Args:
      image: uint8 ``[H, W, 3]`` or ``[n, H, W, 3]`` with ``H = W =
        image_size``.
      mask: bool ``[H, W]`` or ``[n, H, W]``: True where content is made.
        Tokens touching the mask are regenerated (``widen`` more tokens
        around them), and the result is blended in with a feathered edge.
      label: class(es) to condition on (default: the null class of a
        guidance-trained model; other models need one).
      seed, **options: as in :meth:`sample`.

    Returns:
      uint8 like ``image``; pixels outside the regenerated tokens are the
      input's, exactly.
    """
    images, single = self._model_size_images(image)
    masks = np.asarray(mask, bool)
    if masks.shape[-2:] != images.shape[1:3]:
      raise ValueError(f"mask shape {masks.shape} does not match the "
                       f"{images.shape[1]}x{images.shape[2]} image")
    masks = np.broadcast_to(masks, images.shape[:3])
    token_masks = np.stack([editing.pixel_mask_to_token_mask(
        m, self.factor, widen=widen) for m in masks])
    if not token_masks.reshape(len(images), -1).any(-1).all():
      raise ValueError("the mask is empty (no True pixel): nothing to inpaint")
    out = self._edit(images, token_masks, label, seed, self.options(**options),
                     sigma=sigma)
    return out[0] if single else out

  def edit(self, image, box, *, label, seed: int = 0, sigma: float = 1.0,
           **options) -> np.ndarray:
    """Class-conditional box editing (the official Colab's recipe).

    The box ``(top, left, height, width)`` in pixels is widened by one token;
    decoding defaults to 12 steps starting at step 2, as officially.

    Returns:
      uint8 like ``image``.
    """
    images, single = self._model_size_images(image)
    token_mask = editing.box_to_token_mask(box, images.shape[1:3], self.factor,
                                           widen=1)
    options.setdefault("num_steps", 12)
    options.setdefault("start_step", editing.OFFICIAL_EDIT_START_ITER)
    token_masks = np.broadcast_to(token_mask, (len(images),) + token_mask.shape)
    out = self._edit(images, token_masks, label, seed, self.options(**options),
                     sigma=sigma)
    return out[0] if single else out

  def outpaint(self, image, extend, *, label=None, seed: int = 0,
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
    images, single = self._model_size_images(image)
    if np.ndim(extend) == 0:
      extend = (extend,) * 4
    extend = tuple(int(e) for e in extend)
    if len(extend) != 4 or min(extend) < 0 or not any(extend):
      raise ValueError(f"extend must be a non-negative int or (top, bottom, "
                       f"left, right) with one side > 0, got {extend}")
    if any(e % self.factor for e in extend):
      raise ValueError(f"extend {extend} must be multiples of the token "
                       f"factor {self.factor}")
    top, bottom, left, right = extend
    n, h, w, _ = images.shape
    canvas = np.zeros((n, h + top + bottom, w + left + right, 3), np.uint8)
    canvas[:, top:top + h, left:left + w] = images
    known = np.zeros(canvas.shape[1:3], bool)
    known[top:top + h, left:left + w] = True
    out = self._fill(canvas, known, label, seed, self.options(**options))
    return out[0] if single else out

  def panorama(self, image, width: int, *, label=None, seed: int = 0,
               **options) -> np.ndarray:
    """Repeated outpainting to the right until the image is ``width`` wide."""
    images, _ = self._model_size_images(image)
    if int(width) <= images.shape[2]:
      raise ValueError(f"panorama width {width} must exceed the image width "
                       f"{images.shape[2]}")
    return self.outpaint(image, (0, 0, 0, int(width) - images.shape[2]),
                         label=label, seed=seed, **options)

  # -- tokenizer ------------------------------------------------------------

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

  # -- internals ------------------------------------------------------------

  def _guidance_checked(self, opts: DecodeOptions) -> DecodeOptions:
    if opts.cfg_scale != 0 and self.null_label is None:
      raise ValueError(
          "cfg_scale needs a model trained with label dropout (config."
          "masking.label_dropout > 0); this checkpoint has no null class")
    return opts

  def _edit_labels(self, label, n: int) -> np.ndarray:
    if label is None:
      if self.null_label is None:
        raise ValueError(
            f"this model is class-conditional: pass label= (0.."
            f"{self.num_classes - 1})")
      return np.full((n,), self.null_label, np.int32)
    return self.check_labels(_label_array(label, n))

  def _model_size_images(self, image) -> tuple[np.ndarray, bool]:
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
    if h % self.factor or w % self.factor:
      raise ValueError(f"image size {h}x{w} is not a multiple of the token "
                       f"factor {self.factor}")
    if (h, w) != (self.image_size, self.image_size):
      raise ValueError(
          f"image is {h}x{w} but this model works on {self.image_size}x"
          f"{self.image_size} images (resize it; outpaint/panorama grow it)")
    return images, single

  def _edit(self, images, token_masks, label, seed, opts, *, sigma,
            index_offset: int = 0) -> np.ndarray:
    """Regenerates ``token_masks`` of model-size uint8 images; composites."""
    opts = self._guidance_checked(opts)
    labels = self._edit_labels(label, len(images))
    tokens = self.encode(images)
    sequences = np.asarray(self.transformer.layout.make_sequence(
        labels, tokens, mask=token_masks))
    drawn = self._decode(sequences, labels, seed, opts, None,
                         index_offset=index_offset)
    out = np.empty_like(images)
    original = imageio.to_float(images)
    for i, token_mask in enumerate(token_masks):
      region = editing.token_mask_to_pixels(token_mask, self.factor)
      blend = editing.feathered_composite(
          original[i], np.clip(drawn.float_images[i], 0.0, 1.0), region,
          sigma=sigma)
      out[i] = np.where(region[..., None], imageio.to_uint8(blend), images[i])
    return out

  def _fill(self, canvas, known, label, seed, opts) -> np.ndarray:
    """Fills ``~known`` pixels of ``canvas`` with model-size windows."""
    size, f = self.image_size, self.factor
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
      filled = self._edit(patch, masks, label, seed, opts, sigma=0.0,
                          index_offset=count * len(canvas))
      new = ~window_known
      canvas[:, r:r + size, c:c + size][:, new] = filled[:, new]
      known[r:r + size, c:c + size] = True
      count += 1
    return canvas

  def _decode(self, sequences, labels, seed, opts, progress, *,
              index_offset: int = 0) -> Samples:
    guided = opts.cfg_scale != 0
    key = ("decode", opts.num_steps, opts.schedule, opts.greedy, guided,
           opts.cfg_schedule, opts.sampler)
    fn = self._jit(key, lambda *a: self._decode_images(opts, guided, *a))
    base = jax.random.PRNGKey(seed)  # raw uint32 [2] keys, one per row
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(
        jnp.arange(len(sequences), dtype=jnp.uint32) + index_offset)
    scalars = (np.int32(opts.start_step),
               np.float32(opts.choice_temperature),
               np.float32(opts.temperature),
               np.float32(opts.cfg_scale))
    tokens, images = self._batched(
        lambda p, s, k: fn(p, s, k, *scalars),
        [sequences, np.asarray(keys)], progress=progress)
    return Samples(images=imageio.to_uint8(images),
                   tokens=tokens.astype(np.int32),
                   labels=np.asarray(labels, np.int32),
                   float_images=images)

  def _decode_images(self, opts: DecodeOptions, guided: bool, params,
                     sequences, key_data, start_step, choice_temperature,
                     temperature, cfg_scale):
    layout = self.transformer.layout
    logits_fn = transformer_lib.CodebookLogits(self.transformer)
    model_params = params["transformer"]
    if guided:
      logits_fn = GuidedLogits(
          logits_fn, null_token=layout.codebook_size + self.null_label,
          mask_id=layout.mask_id, ramp=opts.cfg_schedule)
      model_params = {"model": model_params, "cfg_scale": cfg_scale}

    def one(sequence, key):
      state = parallel_decode.decode(
          model_params, sequence[None], key,
          tokens_to_logits=logits_fn, num_iter=opts.num_steps,
          start_iter=start_step, choice_temperature=choice_temperature,
          temperature=temperature, schedule=opts.schedule,
          greedy=opts.greedy, mask_token_id=layout.mask_id,
          sampler=opts.sampler)
      return state.final[0, 1:]

    tokens = jax.vmap(one)(sequences, key_data).reshape(-1, *self.grid)
    images = self.tokenizer.apply({"params": params["tokenizer"]}, tokens,
                                  method=self.tokenizer.decode_from_indices)
    return tokens, images

  def _jit(self, key: tuple, fn: Callable) -> Callable:
    if key not in self._jitted:
      self._jitted[key] = jax.jit(fn)
    return self._jitted[key]

  def _batched(self, fn, arrays: list[np.ndarray], *, progress=None
               ) -> list[np.ndarray]:
    """``fn(params, *chunks)`` over fixed-size row chunks sharded over the
    devices (see :func:`maskgit_jax.batching.map_chunks`)."""
    total = len(arrays[0])
    size = min(self.batch_size, -(-total // self._mesh.size) * self._mesh.size)
    result = batching.map_chunks(
        lambda *chunk: fn(self.params, *chunk), arrays, size,
        put=lambda chunk: jax.device_put(chunk, self._rows),
        progress=progress)
    return list(result) if isinstance(result, tuple) else [result]


def _resolve(tokenizer_checkpoint: str | None, workdir: pathlib.Path
             ) -> pathlib.Path:
  """The tokenizer dir of a stage-2 config: absolute, relative to the
  workdir (imported checkpoints), or relative to the current directory."""
  if not tokenizer_checkpoint:
    raise ValueError(f"checkpoint {workdir} names no tokenizer_checkpoint")
  path = pathlib.Path(tokenizer_checkpoint)
  if path.is_absolute():
    return path
  return workdir / path if (workdir / path).is_dir() else path

