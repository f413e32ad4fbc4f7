"""Config builders shared by the training-system tests."""

import pathlib

from maskgit_jax.presets import maskgit_animal_mnist
from maskgit_jax.presets import maskgit_imagenet
from maskgit_jax.presets import vqgan_animal_mnist
from maskgit_jax.presets import vqgan_imagenet

REPO = pathlib.Path(__file__).resolve().parents[1]


def tokenizer_config(dataset: str = "animal_mnist", **overrides):
  if dataset == "animal_mnist":
    config = vqgan_animal_mnist.get_config("tiny")
  else:
    config = vqgan_imagenet.get_config("tiny")
    config.data.name = dataset
  config.update(overrides)
  return config


def transformer_config(tokenizer_workdir, dataset: str = "animal_mnist",
                       **overrides):
  if dataset == "animal_mnist" or dataset.startswith("tokens:"):
    config = maskgit_animal_mnist.get_config("tiny")
  else:
    config = maskgit_imagenet.get_config("tiny")
  config.data.name = dataset
  config.tokenizer_checkpoint = str(tokenizer_workdir)
  config.update(overrides)
  return config


def checkpoint_steps(workdir) -> list[int]:
  folder = pathlib.Path(workdir) / "checkpoints"
  return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def train_command(workdir, config: str, *overrides: str) -> list[str]:
  """``python train.py --config=... --workdir=... --config.x=y ...``."""
  return tool_command("train.py", f"--config={config}",
                      f"--workdir={workdir}", *overrides)


def tool_command(tool: str, *args: str) -> list[str]:
  """The command line of ``tool``: a script of the checkout (``sample.py``)
  or a module (``maskgit_jax.tools.export``), with ``args``."""
  import sys  # pylint: disable=g-import-not-at-top
  head = ([sys.executable, str(REPO / tool)] if tool.endswith(".py")
          else [sys.executable, "-m", tool])
  return head + [str(a) for a in args]


def run_tool(tool: str, *args, cwd=None, env: dict | None = None,
             num_devices: int = 1, timeout: int = 600):
  """Runs :func:`tool_command` to completion (output captured, no check);
  ``env`` defaults to :func:`subprocess_env`."""
  import subprocess  # pylint: disable=g-import-not-at-top
  return subprocess.run(
      tool_command(tool, *args), cwd=cwd or REPO, capture_output=True,
      env=env or subprocess_env(num_devices), text=True, timeout=timeout,
      check=False)


def subprocess_env(num_devices: int = 1, **extra) -> dict:
  """This process's environment for a tool on ``num_devices`` CPU devices:
  the test session's other XLA flags kept (conftest's), ``extra`` added."""
  import os  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import sharding  # pylint: disable=g-import-not-at-top
  env = dict(os.environ)
  flags = [f for f in env.get("XLA_FLAGS", "").split()
           if not f.startswith(sharding.CPU_DEVICES_FLAG + "=")]
  env.update(XLA_FLAGS=" ".join(
      flags + [f"{sharding.CPU_DEVICES_FLAG}={num_devices}"]),
             JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO),
             TF_CPP_MIN_LOG_LEVEL="3")
  env.update({k: str(v) for k, v in extra.items()})
  return env


def restore_params(workdir, step: int):
  """The params of checkpoint ``step`` as arrays on one local device."""
  from maskgit_jax.runtime import checkpointing  # pylint: disable=g-import-not-at-top
  return checkpointing.restore_state_tree(workdir, step)["params"]


def sharded_step(trainer, mesh_shape, devices, batch: dict):
  """One jitted ``trainer.train_step(state, batch, PRNGKey(2))`` on a mesh
  of ``devices`` (params by the common logical rules, batch split over the
  data axes, state from ``trainer.init(PRNGKey(0))``): ``(state, metrics)``,
  to compare meshes with one device."""
  import jax  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import sharding  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import common  # pylint: disable=g-import-not-at-top
  rules = [tuple(r) for r in common.LOGICAL_AXIS_RULES]
  mesh = sharding.make_mesh(mesh_shape, devices)
  state, shardings = sharding.create_sharded(trainer.init, mesh, rules,
                                             jax.random.PRNGKey(0))
  rows = sharding.batch_sharding(mesh)
  step = jax.jit(trainer.train_step,
                 in_shardings=(shardings, rows, sharding.replicated(mesh)),
                 out_shardings=(shardings, sharding.replicated(mesh)))
  with sharding.mesh_context(mesh, rules):
    return step(state, jax.device_put(batch, rows), jax.random.PRNGKey(2))


def tiny_tokenizer_trainer(weights: dict, **model):
  """A :class:`TokenizerTrainer` of the tiny ImageNet VQGAN (``model``
  overriding its fields) with the tiny discriminator, Adam at 1e-3 for both
  and ``LossWeights(**weights)``."""
  from maskgit_jax.models import discriminator  # pylint: disable=g-import-not-at-top
  from maskgit_jax.models import vqgan  # pylint: disable=g-import-not-at-top
  from maskgit_jax.trainers import tokenizer_step  # pylint: disable=g-import-not-at-top
  config = vqgan_imagenet.get_config("tiny")
  return tokenizer_step.TokenizerTrainer(
      vqgan=vqgan.VQGAN(**dict(config.model, **model)),
      discriminator=discriminator.StyleGANDiscriminator(
          **config.discriminator),
      optimizer=tokenizer_step.adam_optimizer(1e-3),
      disc_optimizer=tokenizer_step.adam_optimizer(1e-3),
      weights=tokenizer_step.LossWeights(**weights))


def phased_step(trainer):
  """``trainer.train_step`` jitted as the loop compiles it: one program per
  phase (``trainer.phase(step)``, static), so a program holds only the
  branches its steps take. ``step(state, images, rng, **kwargs)``."""
  import jax  # pylint: disable=g-import-not-at-top
  step = jax.jit(trainer.train_step, static_argnames="phase")

  def run(state, *args, **kwargs):
    return step(state, *args, phase=trainer.phase(int(state.step)), **kwargs)
  return run


def objective_step(objective, mesh_shape, devices):
  """:func:`sharded_step` of a :class:`TokenTrainer` for ``objective`` (AdamW
  at 1e-3) on a batch of 8 random 4x4 token grids (codes < 24, labels < 4):
  ``(state, metrics)``."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from maskgit_jax.trainers import token_trainer  # pylint: disable=g-import-not-at-top
  trainer = token_trainer.TokenTrainer(
      objective, optimizer=token_trainer.make_optimizer(
          learning_rate=1e-3, warmup_steps=1, total_steps=10))
  batch = {
      "tokens": jax.random.randint(jax.random.PRNGKey(1), (8, 4, 4), 0, 24),
      "labels": jnp.arange(8) % 4}
  return sharded_step(trainer, mesh_shape, devices, batch)


def tiny_demo_run(tmp_path_factory):
  """``make demo``'s tiny variant as a study's base run (another training
  seed, the validation split held out): ``(out, metrics)``. Test modules
  wrap it as their module fixture ``tiny_demo``."""
  from maskgit_jax.tools import demo  # pylint: disable=g-import-not-at-top
  out = tmp_path_factory.mktemp("demo")
  result = demo.run(out, "tiny", seed=1, train_split="train_minus_validation")
  return out, result
