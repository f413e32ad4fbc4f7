"""The Generator: a trained MaskGIT (transformer + tokenizer) that samples.

Every sample ``i`` draws its randomness from ``fold_in(PRNGKey(seed), i)``,
so a sample depends on its seed, index, label and options only, not on the
batch size or the number of devices. Each decode is jitted once per
(batch shape, static options) and runs data-parallel over the local devices;
temperatures, guidance scale and start iteration are traced (changing them
does not recompile). Editing lives in :mod:`.edit_tasks`, rejection
sampling in :mod:`.rejection`; both are methods here.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from maskgit_jax import batching
from maskgit_jax import compile_cache
from maskgit_jax import guidance
from maskgit_jax import imageio
from maskgit_jax import parallel_decode
from maskgit_jax import restore
from maskgit_jax import sharding
from maskgit_jax.inference import edit_tasks
from maskgit_jax.inference import rejection
from maskgit_jax.inference.options import DecodeOptions, Samples, label_array
from maskgit_jax.models import critic as critic_lib
from maskgit_jax.models import transformer as transformer_lib
from maskgit_jax.models import vqgan as vqgan_lib


@dataclasses.dataclass(frozen=True)
class GuidedLogits:
  """Classifier-free guidance around a ``tokens_to_logits`` function.

  ``params`` is ``{"model": model params, "cfg_scale": w}`` (plus
  ``"cfg_power"``, the ``p`` of ``"power_cosine"``, default 3); the
  unconditional pass replaces the class token by the null class token.
  ``ramp`` is a :data:`maskgit_jax.guidance.CFG_SCHEDULES` name; the step
  schedules take the decode's ``progress`` (see ``takes_progress``).
  """

  logits_fn: Callable[[Any, jax.Array], jax.Array]
  null_token: int
  mask_id: int
  ramp: str = "constant"

  @property
  def takes_progress(self) -> bool:
    """Whether :func:`maskgit_jax.parallel_decode.decode` passes ``k / T``."""
    return self.ramp in guidance.STEP_SCHEDULES

  def __call__(self, params, ids: jax.Array, progress=None) -> jax.Array:
    batch = ids.shape[0]
    uncond = ids.at[:, 0].set(self.null_token)
    both = self.logits_fn(params["model"], jnp.concatenate([ids, uncond], 0))
    cond, free = both[:batch], both[batch:]
    decoded = None
    if self.ramp == "linear":
      decoded = jnp.mean(ids[:, 1:] != self.mask_id, axis=-1)
    scale = guidance.guidance_scale(
        self.ramp, params["cfg_scale"], progress=progress,
        decoded_share=decoded, power=params.get("cfg_power", 3.0))
    scale = jnp.reshape(scale, jnp.shape(scale) + (1, 1))
    return cond + scale * (cond - free)


@jax.jit
def _row_keys(base, rows):
  """uint32 ``[n, 2]`` raw keys ``fold_in(base, rows[i])``: one compiled
  program (an eager vmap re-traces on every call, a few ms each)."""
  return jax.vmap(lambda i: jax.random.fold_in(base, i))(rows)


class _PerShape:
  """``fn(params, *inputs)`` traced (or loaded from the program cache) once
  per signature of ``inputs``: :func:`maskgit_jax.compile_cache.exported`.

  ``params`` is always the Generator's own (fixed) tree, so it is left out
  of the per-call lookup: flattening it costs 0.6 ms a call on the demo
  model, 3% of a batch-1 sample (the exported program's key includes it).
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


class Generator:
  """A trained MaskGIT (transformer + tokenizer) ready to sample and edit."""

  def __init__(self, transformer: transformer_lib.Transformer,
               transformer_params, tokenizer: vqgan_lib.VQGAN,
               tokenizer_params, *, image_size: int,
               null_label: int | None = None,
               defaults: DecodeOptions | None = None, batch_size: int = 64,
               devices: Sequence[jax.Device] | None = None,
               precision: str = "float32",
               critic: restore.RestoredCritic | None = None):
    """Wraps models and params; most users call :meth:`from_checkpoint`.

    Args:
      transformer, transformer_params: the stage-2 model and its params.
      tokenizer, tokenizer_params: the VQGAN and its params.
      image_size: the side of the square images the transformer generates.
      null_label: the null class of a model trained with label dropout.
      defaults: decode options used where a call leaves them out.
      batch_size: images per batch (rounded up to a multiple of the device
        count).
      devices: where to run (default: all local devices, data-parallel).
      precision: the transformer's: "float32" (default, the official
        numerics), "bfloat16" (parameters and activations) or
        "bfloat16_matmul" (products only); logits, softmax and sampling
        stay float32 (see ``models.transformer.with_precision``).
      critic: a token critic (:func:`maskgit_jax.restore.load_critic`) for
        ``order="critic"``; it runs in float32.
    """
    if image_size % tokenizer.factor:
      raise ValueError(f"image_size {image_size} is not a multiple of the "
                       f"token factor {tokenizer.factor}")
    transformer, transformer_params = transformer_lib.with_precision(
        transformer, transformer_params, precision)
    self.precision = precision
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
    self.devices = list(devices or jax.local_devices())
    self._mesh = sharding.make_mesh((-1, 1, 1), self.devices)
    self._rows = sharding.batch_sharding(self._mesh)
    n = len(self.devices)
    self.batch_size = -(-max(int(batch_size), 1) // n) * n
    if critic is not None and critic.critic.layout != transformer.layout:
      raise ValueError("the critic was trained for another token layout "
                       f"({critic.critic.layout}) than this model's "
                       f"({transformer.layout})")
    self.critic = critic
    params = {"transformer": transformer_params, "tokenizer": tokenizer_params}
    if critic is not None:
      params["critic"] = critic.params
    params = nn.unbox(params)  # e.g. straight from model.init
    self.params = jax.device_put(params, sharding.replicated(self._mesh))
    self._jitted: dict[tuple, Callable] = {}

  @classmethod
  def from_checkpoint(cls, path: str | pathlib.Path, *, use_ema: bool = True,
                      step: int | None = None,
                      critic: str | pathlib.Path | None = None,
                      **kwargs) -> "Generator":
    """Loads a stage-2 training workdir or a directory from ``official``.

    Args:
      path: the directory holding ``checkpoints/``.
      use_ema: use the EMA params when the checkpoint has them.
      step: the checkpoint step (default: the latest).
      critic: a token critic's workdir, for ``order="critic"``.
      **kwargs: passed to the constructor (``batch_size``, ``devices``,
        ``precision``).

    Raises:
      FileNotFoundError: no checkpoint at ``path`` or at its tokenizer's.
      ValueError: the checkpoint is not a stage-2 (transformer) one.
    """
    saved = restore.load_transformer(path, step=step, use_ema=use_ema)
    defaults = DecodeOptions.from_config(
        saved.decode, guided=saved.null_label is not None)
    if critic is not None:
      kwargs["critic"] = restore.load_critic(critic, saved.params)
    return cls(saved.model, saved.params, saved.tokenizer,
               saved.tokenizer_params, image_size=saved.image_size,
               null_label=saved.null_label, defaults=defaults, **kwargs)

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
    return self.defaults.replace(**overrides)

  def check_labels(self, labels) -> np.ndarray:
    """int32 ``[n]``; raises ValueError for labels outside the model's classes."""
    arr = label_array(labels)
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
             classifier: rejection.Classifier | None = None,
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
    opts = self.checked_options(**options)
    if classifier is None:
      return self.decode_sequences(self.masked_sequences(labels), labels,
                                   seed, opts, progress)
    return rejection.rejection_sample(self, labels, seed, opts, progress,
                                      classifier, acceptance_rate)

  inpaint = edit_tasks.inpaint
  edit = edit_tasks.edit
  outpaint = edit_tasks.outpaint
  panorama = edit_tasks.panorama

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

  # -- the decode every task runs -------------------------------------------

  def checked_options(self, **overrides) -> DecodeOptions:
    """:meth:`options`, refusing guidance on a model without a null class."""
    opts = self.options(**overrides)
    if opts.order == "critic" and self.critic is None:
      raise ValueError(
          "order='critic' needs a token critic: Generator.from_checkpoint("
          "..., critic=CRITIC_WORKDIR) (sample.py --critic=...)")
    if opts.cfg_scale != 0 and self.null_label is None:
      raise ValueError(
          "cfg_scale needs a model trained with label dropout (config."
          "masking.label_dropout > 0); this checkpoint has no null class")
    return opts

  def masked_sequences(self, labels: np.ndarray) -> np.ndarray:
    """int32 ``[n, 1 + h * w]``: each label's class token, then all masks."""
    return np.asarray(self.transformer.layout.masked_sequence(
        labels, self.grid[0] * self.grid[1]))

  def decode_sequences(self, sequences, labels, seed, opts: DecodeOptions,
                       progress=None, *, index_offset: int = 0) -> Samples:
    """Decodes int ``[n, 1 + h * w]`` sequences (masks where to generate).

    Row ``i`` uses ``fold_in(PRNGKey(seed), index_offset + i)``.
    """
    guided = opts.cfg_scale != 0
    fn = self._jit(("decode",) + opts.static(),
                   lambda *a: self._decode_images(opts, guided, *a))
    keys = _row_keys(jax.random.PRNGKey(seed),
                     np.arange(len(sequences), dtype=np.uint32)
                     + np.uint32(index_offset))
    traced = opts.traced()
    tokens, images = self._batched(
        lambda p, s, k: fn(p, s, k, traced),
        [np.asarray(sequences), np.asarray(keys)], progress=progress)
    return Samples(images=imageio.to_uint8(images),
                   tokens=tokens.astype(np.int32),
                   labels=np.asarray(labels, np.int32),
                   float_images=images)

  def _decode_images(self, opts: DecodeOptions, guided: bool, params,
                     sequences, key_data, traced: dict):
    """``traced``: :meth:`DecodeOptions.traced`, arguments of the program."""
    layout = self.transformer.layout
    logits_fn = transformer_lib.CodebookLogits(self.transformer)
    model_params = params["transformer"]
    if guided:
      logits_fn = GuidedLogits(
          logits_fn, null_token=layout.codebook_size + self.null_label,
          mask_id=layout.mask_id, ramp=opts.cfg_schedule)
      model_params = {"model": model_params,
                      "cfg_scale": traced["cfg_scale"],
                      "cfg_power": traced["cfg_power"]}

    critic_args = {}
    if opts.order == "critic":
      critic_args = dict(
          tokens_to_critic=critic_lib.CriticScores(self.critic.critic),
          critic_params=params["critic"])

    def one(sequence, key):
      state = parallel_decode.decode(
          model_params, sequence[None], key,
          tokens_to_logits=logits_fn, num_iter=opts.num_iter,
          start_iter=traced["start_iter"],
          choice_temperature=traced["choice_temperature"],
          temperature=traced["temperature"], schedule=opts.schedule,
          greedy=opts.greedy, mask_token_id=layout.mask_id,
          sampler=opts.sampler, order=opts.order,
          roll_order=opts.roll_order,
          temperature_schedule=opts.temperature_schedule,
          final_temperature=traced["final_temperature"],
          top_k=traced["top_k"], top_p=traced["top_p"],
          remask=opts.remask, remask_eta=traced["remask_eta"],
          **critic_args)
      return state.final[0, 1:]

    tokens = jax.vmap(one)(sequences, key_data).reshape(-1, *self.grid)
    images = self.tokenizer.apply({"params": params["tokenizer"]}, tokens,
                                  method=self.tokenizer.decode_from_indices)
    return tokens, images

  def _jit(self, key: tuple, fn: Callable) -> Callable:
    """``fn`` compiled per argument shapes; with the compilation cache on,
    its traced programs are kept on disk too (a new process skips tracing;
    see :func:`maskgit_jax.compile_cache.exported`)."""
    if key not in self._jitted:
      closure = repr((key, self.transformer, self.tokenizer, self.null_label,
                      self.critic and self.critic.critic))
      self._jitted[key] = _PerShape(fn, closure)
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
