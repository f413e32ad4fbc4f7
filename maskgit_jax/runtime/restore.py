"""Workdir -> (module, params, decode defaults): how checkpoints become models.

The one place that turns a saved config into Flax modules and a checkpoint
into parameters, used by training (the frozen tokenizer of stage 2),
``pretokenize`` and sampling alike, so that all of them build the same
model from the same workdir. Works for training workdirs and for the
directories written by ``python -m maskgit_jax.runtime.official``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from etils import epath

from maskgit_jax.runtime import checkpointing
from maskgit_jax.runtime import storage
from maskgit_jax.runtime import supervised
from maskgit_jax.models import causal_transformer as causal_lib
from maskgit_jax.models import continuous_heads
from maskgit_jax.models import continuous_transformer as continuous_lib
from maskgit_jax.models import critic as critic_lib
from maskgit_jax.models import mage as mage_lib
from maskgit_jax.models import perceptual as perceptual_lib
from maskgit_jax.models import transformer as transformer_lib
from maskgit_jax.models import vqgan as vqgan_lib


def module_kwargs(section: Mapping[str, Any]) -> dict:
  """A config section (ConfigDict or the saved JSON dict) as keyword args."""
  return dict(section.to_dict() if hasattr(section, "to_dict") else section)


def _null_class(kwargs: dict, label_dropout: float) -> int | None:
  """Adds the null class to ``kwargs["num_classes"]`` when labels are
  dropped in training; returns its label (None without label dropout)."""
  if float(label_dropout) <= 0:
    return None
  null_label = int(kwargs["num_classes"])
  kwargs["num_classes"] = null_label + 1
  return null_label


def unconditional_label(num_classes: int, null_label: int | None) -> int:
  """The class token that tells a model no label: the null class of a
  model trained with label dropout, class 0 of a one-class (unconditional)
  model. ``num_classes`` counts the model's class tokens, the null one
  included.

  Raises:
    ValueError: a class-conditional model without a null class (trained
      without label dropout): any class token would tell it a label.
  """
  if null_label is not None:
    return int(null_label)
  if int(num_classes) == 1:
    return 0
  raise ValueError(
      f"this model has {num_classes} classes and no null class (it was "
      "trained without masking.label_dropout), so every class token tells "
      "it a label: nothing unconditional can be asked of it")


def transformer_from_config(config: Mapping[str, Any]
                            ) -> tuple[transformer_lib.Transformer, int | None]:
  """The stage-2 model of a config and its null label.

  With ``masking.label_dropout > 0`` (classifier-free guidance) the model
  gets one class token more than ``model.num_classes``: the null class,
  whose label is ``model.num_classes``. Otherwise the null label is None.
  """
  kwargs = module_kwargs(config["model"])
  null_label = _null_class(
      kwargs, (config.get("masking") or {}).get("label_dropout", 0.0))
  return transformer_lib.Transformer(**kwargs), null_label


def prior_from_config(config: Mapping[str, Any]
                      ) -> tuple[causal_lib.CausalTransformer, int | None]:
  """The autoregressive prior of an ``ar``-stage config and its null label
  (``ar.label_dropout > 0`` adds the null class, as for stage 2)."""
  kwargs = module_kwargs(config["model"])
  null_label = _null_class(
      kwargs, (config.get("ar") or {}).get("label_dropout", 0.0))
  return causal_lib.CausalTransformer(**kwargs), null_label


def continuous_from_config(config: Mapping[str, Any]
                           ) -> tuple[continuous_lib.ContinuousTransformer,
                                      int | None]:
  """The body of a ``continuous``-stage config and its null label
  (``continuous.label_dropout > 0`` adds the null class, as for stage 2)."""
  kwargs = module_kwargs(config["model"])
  null_label = _null_class(
      kwargs, (config.get("continuous") or {}).get("label_dropout", 0.0))
  return continuous_lib.ContinuousTransformer(**kwargs), null_label


def continuous_head_from_config(config: Mapping[str, Any]) -> tuple[Any, int]:
  """``(head module, diffusion levels)`` of a ``continuous``-stage config
  (:func:`maskgit_jax.models.continuous_heads.make_head`)."""
  section = dict(config["continuous"])
  head = continuous_heads.make_head(
      section.get("head", "diffusion"), int(config["model"]["channels"]),
      **{k: int(section[k]) for k in ("head_width", "head_depth",
                                      "num_mixtures") if k in section})
  return head, int(section.get("num_levels", 1000))


def mage_from_config(config: Mapping[str, Any]
                     ) -> tuple[mage_lib.MAGE, None]:
  """The MAGE model of a ``mage``-stage config (unconditional: no null
  label)."""
  return mage_lib.MAGE(**module_kwargs(config["model"])), None


def _require_checkpoint(workdir: epath.Path, what: str) -> None:
  if not (workdir / "checkpoints").is_dir():
    raise FileNotFoundError(
        f"{what} checkpoint {workdir} not found (expected a workdir with a "
        "checkpoints/ folder)")


def _check_stage(saved: Mapping[str, Any], stage: str, workdir, hint: str
                 ) -> None:
  if saved.get("stage") != stage:
    raise ValueError(f"checkpoint {workdir} is a {saved.get('stage')!r} "
                     f"checkpoint; {hint}")


def load_tokenizer(workdir: storage.PathLike
                   ) -> tuple[vqgan_lib.VQGAN, Any]:
  """The frozen stage-1 model and params of a training or imported workdir.

  Raises:
    FileNotFoundError: when ``workdir`` holds no checkpoint.
    ValueError: when the checkpoint is not a tokenizer's.
  """
  directory = storage.path(workdir)
  _require_checkpoint(directory, "tokenizer")
  saved = checkpointing.read_config(directory)
  _check_stage(saved, "tokenizer", workdir, "expected a stage-1 tokenizer")
  model = vqgan_lib.VQGAN(**saved["model"])
  return model, checkpointing.restore_state_tree(directory)["params"]


@dataclasses.dataclass(frozen=True)
class RestoredTransformer:
  """A stage-2 checkpoint with everything sampling needs.

  Attributes:
    model, params: the transformer (or the autoregressive prior, or MAGE)
      and the params chosen (EMA by default).
    null_label: the null class of a model trained with label dropout.
    image_size: the side of the images it generates.
    decode: the config's ``decode`` section (the decode defaults; a prior's
      ``sampling`` section).
    tokenizer, tokenizer_params: the stage-1 model and params it names.
    config: the whole saved config.
  """

  model: (transformer_lib.Transformer | causal_lib.CausalTransformer
          | mage_lib.MAGE)
  params: Any
  null_label: int | None
  image_size: int
  decode: dict
  tokenizer: vqgan_lib.VQGAN
  tokenizer_params: Any
  config: dict


def load_transformer(workdir: storage.PathLike, *, step: int | None = None,
                     use_ema: bool = True) -> RestoredTransformer:
  """A stage-2 training workdir or imported directory, ready to sample.

  Args:
    workdir: the directory holding ``checkpoints/``.
    step: the checkpoint step (default: the latest).
    use_ema: use the EMA params when the checkpoint has them.

  Raises:
    FileNotFoundError: no checkpoint at ``workdir`` or at its tokenizer's.
    ValueError: the checkpoint is not a stage-2 (transformer) one.
  """
  return _load_sampler(workdir, "transformer", "decode",
                       transformer_from_config, step, use_ema)


def load_prior(workdir: storage.PathLike, *, step: int | None = None,
               use_ema: bool = True) -> RestoredTransformer:
  """An autoregressive prior's workdir (``config.stage = "ar"``), as
  :func:`load_transformer`; ``decode`` holds its ``sampling`` defaults."""
  return _load_sampler(workdir, "ar", "sampling", prior_from_config, step,
                       use_ema)


def load_mage(workdir: storage.PathLike, *, step: int | None = None,
              use_ema: bool = True) -> RestoredTransformer:
  """A MAGE workdir (``config.stage = "mage"``), as :func:`load_transformer`;
  ``decode`` holds its generation defaults."""
  return _load_sampler(workdir, "mage", "decode", mage_from_config, step,
                       use_ema)


def load_continuous(workdir: storage.PathLike, *, step: int | None = None,
                    use_ema: bool = True) -> RestoredTransformer:
  """A continuous-token workdir (``config.stage = "continuous"``), as
  :func:`load_transformer`: ``model`` the body, ``params`` ``{"body",
  "head"}``, ``decode`` its ``sampling`` section, ``tokenizer`` the VAE
  (the head: :func:`continuous_head_from_config`; the latents' scale:
  ``config["latent_scale"]``)."""
  return _load_sampler(workdir, "continuous", "sampling",
                       continuous_from_config, step, use_ema)


def chosen_params(state: Mapping[str, Any], use_ema: bool) -> Any:
  """A restored state's EMA params when ``use_ema`` and it has them, else
  its params."""
  params = state.get("ema_params") if use_ema else None
  return params if params is not None else state["params"]


def checkpoint_stage(workdir: storage.PathLike) -> str | None:
  """The ``stage`` of the latest checkpoint's config in ``workdir``."""
  directory = storage.path(workdir)
  _require_checkpoint(directory, "model")
  return checkpointing.read_config(directory).get("stage")


def _load_sampler(workdir, stage: str, defaults: str, build, step, use_ema
                  ) -> RestoredTransformer:
  directory = storage.path(workdir)
  _require_checkpoint(directory, f"{stage} stage")
  config = checkpointing.read_config(directory, step)
  _check_stage(config, stage, workdir,
               f"expected a {stage!r} workdir (stage-2 transformer or "
               "'mage': Generator; autoregressive prior 'ar': ARGenerator; "
               "'continuous': ContinuousGenerator)")
  model, null_label = build(config)
  tokenizer, tokenizer_params = load_tokenizer(
      resolve_tokenizer(config.get("tokenizer_checkpoint"), directory))
  params = chosen_params(checkpointing.restore_state_tree(directory, step),
                         use_ema)
  return RestoredTransformer(
      model=model, params=params,
      null_label=null_label, image_size=int(config["image_size"]),
      decode=dict(config.get(defaults) or {}), tokenizer=tokenizer,
      tokenizer_params=tokenizer_params, config=config)


@dataclasses.dataclass(frozen=True)
class RestoredCritic:
  """A trained token critic: ``critic.apply({"params": params}, ids)``.

  ``generator_checkpoint`` is the stage-2 workdir it was trained on (a
  self-critic's body is that generator).
  """

  critic: critic_lib.TokenCritic
  params: Any
  self_critic: bool
  generator_checkpoint: epath.Path


def load_critic(workdir: storage.PathLike, generator_params=None, *,
                step: int | None = None, use_ema: bool = True
                ) -> RestoredCritic:
  """A critic workdir (``config.stage = "critic"``), ready for the decode.

  Args:
    workdir: the critic's training workdir.
    generator_params: a self-critic's body (the generator's params; loaded
      from its ``generator_checkpoint`` when None); unused otherwise.
    step, use_ema: as in :func:`load_transformer`.

  Raises:
    FileNotFoundError: no checkpoint at ``workdir``.
    ValueError: the checkpoint is not a critic's.
  """
  directory = storage.path(workdir)
  _require_checkpoint(directory, "critic")
  config = checkpointing.read_config(directory, step)
  _check_stage(config, "critic", workdir,
               "order='critic' needs a critic workdir (configs/"
               "critic_animal_mnist.py)")
  generator_dir = resolve_tokenizer(config.get("generator_checkpoint"),
                                    directory)
  generator, _ = transformer_from_config(
      checkpointing.read_config(generator_dir))
  self_critic = bool(config["critic"]["self_critic"])
  params = chosen_params(checkpointing.restore_state_tree(directory, step),
                         use_ema)
  if self_critic:
    if generator_params is None:
      generator_params = load_transformer(generator_dir).params
    params = {"body": generator_params, "head": params["head"]}
  return RestoredCritic(critic_from_config(config, generator), params,
                        self_critic, generator_dir)


def critic_from_config(config: Mapping[str, Any],
                       generator: transformer_lib.Transformer
                       ) -> critic_lib.TokenCritic:
  """The critic of a critic-stage config, for ``generator``: the generator
  itself as body for a self-critic, else ``config.model`` with the
  generator's codebook, classes and positions."""
  if config["critic"]["self_critic"]:
    return critic_lib.TokenCritic(generator)
  return critic_lib.TokenCritic(transformer_lib.Transformer(**{
      **module_kwargs(config["model"]),
      "codebook_size": generator.codebook_size,
      "num_classes": generator.num_classes,
      "max_position_embeddings": generator.max_position_embeddings}))


def resolve_tokenizer(tokenizer_checkpoint: str | None,
                      workdir: epath.Path) -> epath.Path:
  """The tokenizer dir a stage-2 config names, wherever the reader runs (and
  likewise a critic's ``generator_checkpoint``).

  Tried in order: the path as saved if absolute; relative to the workdir
  (imported checkpoints keep it inside); the workdir's sibling of that name
  (``runs/tok`` beside ``runs/gen``, ``demo_out/tokenizer`` beside
  ``demo_out/maskgit``); relative to the current directory (where training
  ran). The sibling comes before the current directory, so that reading
  ``/elsewhere/demo_out/maskgit`` from a directory with a ``demo_out`` of
  its own does not pair it with the wrong tokenizer. An absolute path
  that no longer exists (a moved run) falls back to the sibling. The first
  that exists wins; if none does, the path as saved (the loader then names
  it in its error).
  """
  if not tokenizer_checkpoint:
    raise ValueError(f"checkpoint {workdir} names no tokenizer_checkpoint")
  path = storage.path(tokenizer_checkpoint)
  sibling = workdir.parent / path.name
  candidates = ((path, sibling) if path.is_absolute() else
                (workdir / path, sibling, path))
  for candidate in candidates:
    if (candidate / "checkpoints").is_dir():
      return candidate
  return path


def load_perceptual(path: storage.PathLike, mode: str = "features"
                    ) -> tuple[perceptual_lib.PerceptualDistance, Any]:
  """The perceptual distance and params saved by
  ``python -m maskgit_jax.tools.train_perceptual``.

  Raises:
    FileNotFoundError: no such file; ValueError: not such a file, or an
      unknown ``mode``.
  """
  if mode not in perceptual_lib.MODES:
    raise ValueError(f"perceptual_mode must be one of {perceptual_lib.MODES}"
                     f", got {mode!r}")
  params, meta = supervised.load(path, ("num_classes", "widths"),
                                 "perceptual network")
  module = perceptual_lib.PerceptualDistance(
      num_classes=int(meta["num_classes"]),
      widths=tuple(int(w) for w in meta["widths"]), mode=mode)
  return module, {"net": params}
