"""Config -> what the training loop needs for one stage (a :class:`Task`).

A task bundles the pure functions of a stage: ``init(rng)`` (boxed state),
``step(state, batch, rng, extras)`` and ``preview(state, batch, extras)``
(images for monitoring), plus ``extras``: frozen parameters the step reads
but never updates (the LPIPS network for stage 1; for the token stages
``{"tokenizer": ..., "frozen": ...}``, the tokenizer and what the objective
reads, such as the critic's generator), and what the loop checks the data
against. Every token stage is one :class:`~.token_trainer.TokenTrainer` with
its objective (:mod:`.token_objectives`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from maskgit_jax.decoding import ar_decode
from maskgit_jax.decoding import continuous_decode
from maskgit_jax.decoding import continuous_options
from maskgit_jax.decoding import decode_options
from maskgit_jax.decoding import parallel_decode
from maskgit_jax.runtime import restore
from maskgit_jax.models import continuous_sampling
from maskgit_jax.models import critic as critic_lib
from maskgit_jax.models import discriminator as discriminator_lib
from maskgit_jax.models import lpips as lpips_lib
from maskgit_jax.models import mage as mage_lib
from maskgit_jax.models import transformer as transformer_lib
from maskgit_jax.models import vqgan as vqgan_lib
from maskgit_jax.trainers import continuous_objectives
from maskgit_jax.trainers import token_objectives
from maskgit_jax.trainers import token_trainer
from maskgit_jax.trainers import tokenizer_step

PREVIEW_IMAGES = 8
_kwargs = restore.module_kwargs


@dataclasses.dataclass(frozen=True)
class Task:
  """One training stage, as pure functions."""

  init: Callable[[jax.Array], Any]
  step: Callable[..., tuple[Any, dict]]
  preview: Callable[[Any, dict, Any], jax.Array]
  extras: Any = None
  # step number -> a hashable phase passed to step(..., phase=...) as a
  # static argument: the loop compiles one program per phase (None: one).
  phase: Callable[[int], Any] | None = None
  # What the loop checks the data against: whether the stage can read
  # cached tokens ("tokens:..." data), the class tokens its model has (None:
  # labels unchecked) and its codebook size (None: no token vocabulary).
  reads_tokens: bool = False
  reads_latents: bool = False  # cached continuous latents: the only data
  num_classes: int | None = None
  codebook_size: int | None = None
  views: int = 1  # views of each record a batch holds (2: MAGE-C's pairs)


def _optimizer(config: ml_collections.ConfigDict):
  """The token stages' AdamW over ``config.num_train_steps``."""
  return token_trainer.make_optimizer(total_steps=config.num_train_steps,
                                      **_kwargs(config.optimizer))


def _token_task(config: ml_collections.ConfigDict, objective, tokenizer,
                extras: dict, preview, **checks) -> Task:
  """A token stage: ``objective`` under the one :class:`TokenTrainer`;
  ``extras`` holds ``tokenizer`` (params of the frozen tokenizer, used when
  batches hold images) and ``frozen`` (what the objective reads)."""
  trainer = token_trainer.TokenTrainer(
      objective=objective, optimizer=_optimizer(config), tokenizer=tokenizer,
      ema_decay=config.ema_decay)

  def step(state, batch, rng, extras, phase=None):
    del phase  # one program
    return trainer.train_step(state, batch, rng, extras["tokenizer"],
                              extras.get("frozen"))

  return Task(init=trainer.init, step=step, preview=preview, extras=extras,
              **{"reads_tokens": True, **checks})


def _render(tokenizer, params, ids: jax.Array, grid: int) -> jax.Array:
  """Preview images of token sequences ``ids [b, 1 + grid * grid]``."""
  images = tokenizer.apply({"params": params},
                           ids[:, 1:].reshape(-1, grid, grid),
                           method=tokenizer.decode_from_indices)
  return jnp.clip(images, 0.0, 1.0)


def preview_tokens(params, labels: jax.Array, decode: dict, *, layout,
                   grid: int, tokens_to_logits, null_label: int | None,
                   **overrides) -> jax.Array:
  """int ``[n, 1 + grid * grid]`` samples of ``labels`` with the config's
  ``decode`` settings and seed 0: what ``Generator.sample(labels, seed=0)``
  draws from the same params (one shared program,
  :func:`~maskgit_jax.decoding.parallel_decode.decode_rows`). ``overrides``: options
  a stage fixes (the critic's ``order``) or the critic's arguments."""
  critic = {k: overrides.pop(k) for k in ("tokens_to_critic", "critic_params")
            if k in overrides}
  opts = decode_options.DecodeOptions.from_config(
      decode, guided=null_label is not None).replace(**overrides)
  keys = parallel_decode.row_keys(0, np.arange(labels.shape[0],
                                               dtype=np.uint32))
  null_token = (None if null_label is None
                else layout.codebook_size + null_label)
  return parallel_decode.decode_rows(
      params, layout.masked_sequence(labels, grid * grid), keys, opts,
      tokens_to_logits=tokens_to_logits, mask_token_id=layout.mask_id,
      null_token=null_token, **critic)


def tokenizer_task(config: ml_collections.ConfigDict) -> Task:
  """Stage 1: VQGAN + discriminator (+ LPIPS when a weights file is set)."""
  perceptual, extras = None, None
  if config.get("perceptual_weights") and config.get("perceptual_network"):
    raise ValueError("set config.perceptual_weights (LPIPS-VGG) or "
                     "config.perceptual_network (trained here), not both")
  if config.get("perceptual_weights"):
    perceptual = lpips_lib.LPIPS()
    extras = lpips_lib.load_params(config.perceptual_weights)
  elif config.get("perceptual_network"):
    perceptual, extras = restore.load_perceptual(
        config.perceptual_network, config.get("perceptual_mode", "features"))
  elif config.losses.get("perceptual_weight"):
    logging.warning(
        "losses.perceptual_weight=%s but neither config.perceptual_weights "
        "nor config.perceptual_network is set: no perceptual loss",
        config.losses.perceptual_weight)
  trainer = tokenizer_step.TokenizerTrainer(
      vqgan=vqgan_lib.VQGAN(**_kwargs(config.model)),
      discriminator=discriminator_lib.StyleGANDiscriminator(
          **_kwargs(config.discriminator)),
      optimizer=tokenizer_step.adam_optimizer(**_kwargs(config.optimizer)),
      disc_optimizer=tokenizer_step.adam_optimizer(
          **_kwargs(config.disc_optimizer)),
      weights=tokenizer_step.LossWeights(**_kwargs(config.losses)),
      perceptual=perceptual)
  size = config.image_size
  example = jnp.zeros((1, size, size, 3), jnp.float32)

  def step(state, batch, rng, extras, phase=None):
    return trainer.train_step(state, batch["images"], rng,
                              perceptual_params=extras, phase=phase)

  def preview(state, batch, extras):
    del extras
    images = batch["images"][:PREVIEW_IMAGES]
    recon, _ = trainer.vqgan.apply({"params": state.params}, images)
    return jnp.concatenate([images, jnp.clip(recon, 0.0, 1.0)], axis=0)

  return Task(init=lambda rng: trainer.init(rng, example), step=step,
              preview=preview, extras=extras, phase=trainer.phase)


def _given_or_loaded_tokenizer(config, tokenizer, what: str):
  """``tokenizer`` (``(model, params)``) or ``config.tokenizer_checkpoint``'s
  (``what`` it must name, for the error)."""
  if tokenizer is not None:
    return tokenizer
  if not config.get("tokenizer_checkpoint"):
    raise ValueError(f"config.tokenizer_checkpoint must name {what}")
  return restore.load_tokenizer(config.tokenizer_checkpoint)


def transformer_task(config: ml_collections.ConfigDict,
                     tokenizer: tuple[vqgan_lib.VQGAN, Any] | None = None
                     ) -> Task:
  """Stage 2: the MaskGIT transformer on tokens of a frozen tokenizer.

  Args:
    config: the stage-2 config.
    tokenizer: ``(model, params)`` to use instead of loading
      ``config.tokenizer_checkpoint`` (params may be abstract, e.g. for
      ahead-of-time compilation).
  """
  tokenizer, tokenizer_params = _given_or_loaded_tokenizer(
      config, tokenizer, "the stage-1 workdir whose tokenizer makes the "
      "training tokens")
  model, null_label = restore.transformer_from_config(config)
  if tokenizer.codebook_size != model.codebook_size:
    raise ValueError(
        f"tokenizer codebook has {tokenizer.codebook_size} codes but "
        f"config.model.codebook_size is {model.codebook_size}")
  check_grid(config.image_size, tokenizer.factor,
             model.max_position_embeddings - 1,
             "config.model.max_position_embeddings - 1")
  objective = token_objectives.MVTM(model=model, null_label=null_label,
                                    **_kwargs(config.masking))
  logits_fn = transformer_lib.CodebookLogits(model)
  grid = config.image_size // tokenizer.factor

  def preview(state, batch, extras):
    labels = batch["labels"][:PREVIEW_IMAGES]
    if objective.unconditional:  # the one class
      labels = jnp.zeros_like(labels)
    ids = preview_tokens(state.ema_params, labels,
                         config.decode, layout=model.layout, grid=grid,
                         tokens_to_logits=logits_fn, null_label=null_label)
    return _render(tokenizer, extras["tokenizer"], ids, grid)

  return _token_task(config, objective, tokenizer,
                     {"tokenizer": tokenizer_params}, preview,
                     num_classes=(None if objective.unconditional else
                                  config.model.num_classes),
                     codebook_size=model.codebook_size)


def critic_task(config: ml_collections.ConfigDict) -> Task:
  """A token critic of the frozen stage-2 model ``config.generator_checkpoint``.

  ``config.model`` is the critic's own body (its codebook, classes and
  positions are taken from the generator); ``config.critic`` holds
  ``self_critic``, ``label`` and ``temperature`` (see
  :class:`~maskgit_jax.trainers.token_objectives.Critic`).
  """
  if not config.get("generator_checkpoint"):
    raise ValueError("config.generator_checkpoint must name the stage-2 "
                     "workdir whose samples the critic learns to spot")
  saved = restore.load_transformer(config.generator_checkpoint)
  generator = saved.model
  objective = token_objectives.Critic(
      critic=restore.critic_from_config(config, generator),
      generator=generator, schedule=config.masking.schedule,
      **_kwargs(config.critic))
  tokenizer = saved.tokenizer
  grid = saved.image_size // tokenizer.factor

  def preview(state, batch, extras):
    """Samples decoded with ``order="critic"`` (the EMA critic)."""
    ids = preview_tokens(
        extras["frozen"], batch["labels"][:PREVIEW_IMAGES],
        config.decode, layout=generator.layout, grid=grid,
        tokens_to_logits=transformer_lib.CodebookLogits(generator),
        null_label=saved.null_label, order="critic",
        tokens_to_critic=critic_lib.CriticScores(objective.critic),
        critic_params=objective.full_params(state.ema_params,
                                            extras["frozen"]))
    return _render(tokenizer, extras["tokenizer"], ids, grid)

  return _token_task(config, objective, tokenizer,
                     {"tokenizer": saved.tokenizer_params,
                      "frozen": saved.params}, preview,
                     codebook_size=generator.codebook_size)


def check_grid(image_size: int, factor: int, positions: int, field: str
               ) -> int:
  """The token grid side of ``image_size``; refuses a model that could not
  load it (an override of ``image_size`` alone, say) in one line."""
  grid = image_size // factor
  if image_size % factor or grid * grid != positions:
    raise ValueError(
        f"image_size {image_size} with the tokenizer's factor {factor} makes "
        f"{image_size / factor:g}x{image_size / factor:g} tokens, but {field} "
        f"is {positions}: the trained model could not sample at this size "
        "(image_size must be a multiple of the factor; presets derive the "
        "positions from image_size and token_factor)")
  return grid


def _frozen_tokenizer(config: ml_collections.ConfigDict, model):
  """``(tokenizer, params, grid)`` of ``config.tokenizer_checkpoint``,
  checked against a model with ``codebook_size`` and ``num_tokens``."""
  tokenizer, tokenizer_params = _given_or_loaded_tokenizer(
      config, None, "the stage-1 workdir whose tokenizer makes the training "
      "tokens")
  if tokenizer.codebook_size != model.codebook_size:
    raise ValueError(
        f"the tokenizer has {tokenizer.codebook_size} codes; config.model "
        f"has codebook_size {model.codebook_size}")
  grid = check_grid(config.image_size, tokenizer.factor, model.num_tokens,
                    "config.model.num_tokens")
  return tokenizer, tokenizer_params, grid


def ar_task(config: ml_collections.ConfigDict) -> Task:
  """The autoregressive prior (VQGAN's stage 2) on a frozen tokenizer's
  tokens; previews are KV-cached samples with the config's ``sampling``."""
  model, null_label = restore.prior_from_config(config)
  tokenizer, tokenizer_params, grid = _frozen_tokenizer(config, model)
  objective = token_objectives.NextToken(model=model, null_label=null_label,
                                         **_kwargs(config.ar))
  sampling = config.sampling

  def preview(state, batch, extras):
    inputs = model.layout.masked_sequence(batch["labels"][:PREVIEW_IMAGES],
                                          model.num_tokens)
    guided = null_label is not None and sampling.cfg_scale != 0
    sequences = ar_decode.decode(
        state.ema_params, inputs, jax.random.PRNGKey(0), model=model,
        temperature=sampling.temperature, top_k=int(sampling.top_k) or None,
        top_p=sampling.top_p if sampling.top_p < 1 else None,
        guided=guided, cfg_scale=sampling.cfg_scale,
        null_token=model.layout.codebook_size + (null_label or 0))
    return _render(tokenizer, extras["tokenizer"], sequences, grid)

  return _token_task(config, objective, tokenizer,
                     {"tokenizer": tokenizer_params}, preview,
                     num_classes=config.model.num_classes,
                     codebook_size=model.codebook_size)


def mage_task(config: ml_collections.ConfigDict) -> Task:
  """MAGE (variable-ratio masked token modelling with token dropping) on a
  frozen tokenizer's tokens; previews are unconditional samples with the
  config's ``decode`` settings. ``config.mage`` holds the corruption and
  loss settings (:class:`~maskgit_jax.trainers.token_objectives.MAGE`)."""
  model, _ = restore.mage_from_config(config)
  tokenizer, tokenizer_params, grid = _frozen_tokenizer(config, model)
  objective = token_objectives.MAGE(model=model, **_kwargs(config.mage))

  def preview(state, batch, extras):
    ids = preview_tokens(
        state.ema_params, jnp.zeros_like(batch["labels"][:PREVIEW_IMAGES]),
        config.decode, layout=model.layout, grid=grid,
        tokens_to_logits=mage_lib.MAGELogits(model), null_label=None)
    return _render(tokenizer, extras["tokenizer"], ids, grid)

  return _token_task(config, objective, tokenizer,
                     {"tokenizer": tokenizer_params}, preview,
                     codebook_size=model.codebook_size,
                     views=objective.views)


def continuous_task(config: ml_collections.ConfigDict,
                    tokenizer: tuple[vqgan_lib.VQGAN, Any] | None = None
                    ) -> Task:
  """Masked generation over a VAE tokenizer's cached latents (MAR; GIVT's
  masked model): ``config.model`` is the body, ``config.continuous`` the
  objective (:class:`~.continuous_objectives.ContinuousMVTM`),
  ``config.sampling`` the previews' decode; the loop records the cache's
  ``latent_scale`` in the config. ``tokenizer``: ``(model, params)``
  instead of loading ``config.tokenizer_checkpoint`` (as
  :func:`transformer_task`)."""
  model, null_label = restore.continuous_from_config(config)
  tokenizer, tokenizer_params = _given_or_loaded_tokenizer(
      config, tokenizer, "the VAE workdir whose latents the stage trains on")
  if not tokenizer.continuous or tokenizer.embedding_dim != model.channels:
    raise ValueError(
        f"the tokenizer ({tokenizer.quantizer_type!r}, {tokenizer.embedding_dim}"
        f" channels) must be a VAE with config.model.channels = "
        f"{model.channels} channels (model.quantizer_type 'kl')")
  grid = check_grid(config.image_size, tokenizer.factor, model.num_tokens,
                    "config.model.num_tokens")
  objective = continuous_objectives.ContinuousMVTM(
      model=model, null_label=null_label, **_kwargs(config.continuous))
  opts = continuous_options.ContinuousOptions.from_config(
      config.sampling, guided=null_label is not None)
  draw = continuous_sampling.draw_for(objective.head_module,
                                      objective.num_levels, opts)
  predict = continuous_sampling.Predict(model,
                                        null_label if opts.guided else None)

  def preview(state, batch, extras):
    labels = batch["labels"][:PREVIEW_IMAGES]
    x, unknown = continuous_sampling.initial(labels, model.num_tokens,
                                             model.channels)
    latents = continuous_decode.decode_rows(
        state.ema_params, x, unknown, labels,
        parallel_decode.row_keys(0, np.arange(len(labels), dtype=np.uint32)),
        opts, predict=predict, draw=draw)
    latents = latents.reshape(-1, grid, grid, model.channels)
    images = tokenizer.apply({"params": extras["tokenizer"]},
                             latents / config.latent_scale,
                             method=tokenizer.decode)
    return jnp.clip(images, 0.0, 1.0)

  return _token_task(config, objective, None,
                     {"tokenizer": tokenizer_params}, preview,
                     reads_tokens=False, reads_latents=True,
                     num_classes=config.model.num_classes)


STAGES = {"tokenizer": tokenizer_task, "transformer": transformer_task,
          "critic": critic_task, "ar": ar_task, "mage": mage_task,
          "continuous": continuous_task}


def make_task(config: ml_collections.ConfigDict) -> Task:
  if config.stage not in STAGES:
    raise ValueError(f"config.stage must be one of {sorted(STAGES)}, got "
                     f"{config.stage!r}")
  return STAGES[config.stage](config)
