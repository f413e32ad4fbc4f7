"""``train_and_evaluate(config, workdir)``: the training loop of every stage.

Mesh and sharded state from the config, deterministic per-process data,
one jitted step with in/out shardings and a donated state, Orbax
checkpoints that resume by default (and on preemption), and monitoring
(scalars to the log, ``metrics.jsonl`` and TensorBoard when TensorFlow is
installed; progress with steps/s and ETA; a parameter overview in
``parameters.txt``; preview images as PNG files).
"""

from __future__ import annotations

import functools
import logging
import signal
import threading

import jax
from etils import epath
import ml_collections
import numpy as np

from maskgit_jax.runtime import checkpointing
from maskgit_jax.data import imageio
from maskgit_jax.data import input_pipeline
from maskgit_jax.runtime import monitoring
from maskgit_jax.runtime import sharding as sharding_lib
from maskgit_jax.runtime import storage
from maskgit_jax.trainers import tasks
from maskgit_jax.trainers import warm_start

def check_finite(metrics: dict, step: int) -> None:
  """Raises FloatingPointError naming every non-finite metric at ``step``."""
  bad = {k: float(v) for k, v in metrics.items()
         if not np.all(np.isfinite(np.asarray(v)))}
  if bad:
    names = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
    raise FloatingPointError(f"non-finite training values at step {step}: "
                             f"{names}")


def _check_workdir(workdir: epath.Path) -> None:
  try:
    workdir.mkdir(parents=True, exist_ok=True)
    probe = workdir / f".write_test_{jax.process_index()}"
    probe.write_text("ok")
    probe.unlink()
  except OSError as e:
    raise PermissionError(f"workdir {workdir} is not writable "
                          f"({e.strerror or e})") from e


class _PreemptionFlag:
  """Set by SIGTERM: the loop saves a checkpoint and returns."""

  def __init__(self):
    self.event = threading.Event()
    self._previous = None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM,
                                     lambda *_: self.event.set())
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def _log_parameters(workdir: epath.Path, params) -> None:
  """One log line; the per-array table goes to ``parameters.txt``."""
  from clu import parameter_overview  # pylint: disable=g-import-not-at-top
  params = jax.device_get(params)
  count = parameter_overview.count_parameters(params)
  logging.info("%s parameters (table in %s)", f"{count:,}",
               workdir / "parameters.txt")
  if jax.process_index() == 0:
    (workdir / "parameters.txt").write_text(
        parameter_overview.get_parameter_overview(params) + "\n")


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: storage.PathLike) -> dict[str, float]:
  """Trains the stage ``config.stage`` in ``workdir`` (resuming if possible).

  Every input is validated before anything is written to ``workdir``.

  Returns:
    The last logged metrics (host floats).

  Raises:
    ValueError, FileNotFoundError, PermissionError: bad configuration or
      inputs (one-line messages).
    FloatingPointError: a non-finite loss; the checkpoints written before
      it are kept untouched.
  """
  workdir = storage.path(workdir)
  mesh = sharding_lib.make_mesh(config.mesh_shape)
  rules = tuple(tuple(r) for r in config.logical_axis_rules)
  dp = sharding_lib.data_parallel_size(mesh)
  if config.batch_size % dp:
    raise ValueError(f"batch_size {config.batch_size} is not divisible by the "
                     f"data-parallel size {dp} (mesh {dict(mesh.shape)})")
  source = input_pipeline.make_source(config.data.name, config.data.split,
                                      config.data.get("data_dir"))
  tokens = isinstance(source, input_pipeline.TokenSource)
  latents = isinstance(source, input_pipeline.LatentSource)
  if tokens and config.get("token_factor"):
    grid = config.image_size // config.token_factor
    if tuple(source.grid) != (grid, grid):
      raise ValueError(f"token file grid {tuple(source.grid)} does not match "
                       f"the config's {grid}x{grid} (image_size / token_factor)")
  task = tasks.make_task(config)
  if latents != task.reads_latents:
    raise ValueError(
        f"config.stage {config.stage!r} reads cached latents "
        "(data.name 'latents:...')" if task.reads_latents else
        "cached latents (data.name 'latents:...') feed the continuous stage "
        f"only, not config.stage {config.stage!r}")
  if tokens and not latents and not task.reads_tokens:
    raise ValueError("cached tokens (data.name 'tokens:...') only feed the "
                     f"token stages, not config.stage {config.stage!r}")
  if latents:  # saved with every checkpoint: the samplers undo it
    config.latent_scale = source.latent_scale
  if task.num_classes is not None and source.num_classes > task.num_classes:
    raise ValueError(
        f"dataset {config.data.name} has {source.num_classes} classes but the "
        f"model has {task.num_classes} class tokens "
        "(config.model.num_classes)")
  plan = input_pipeline.BatchPlan(
      len(source), config.batch_size, config.seed, jax.process_index(),
      jax.process_count())
  loader = input_pipeline.LocalBatchLoader(
      source, plan, input_pipeline.make_preprocess(
          source, image_size=config.image_size, train=True,
          min_scale=config.data.min_scale, flip=config.data.flip,
          views=task.views))
  _check_workdir(workdir)

  root = jax.random.PRNGKey(config.seed)
  init_rng, train_rng = jax.random.split(root)
  state, state_shardings = sharding_lib.create_sharded(
      task.init, mesh, rules, init_rng)
  ckpt = checkpointing.Checkpointer(workdir,
                                    max_to_keep=config.keep_checkpoints)
  next_batch = 0
  restored = ckpt.restore_latest_good(
      checkpointing.abstract_like(state, state_shardings))
  if restored is not None:
    start_step, state, data = restored
    next_batch = int(data["next_batch"])
    logging.info("resumed from step %d", start_step)
  elif config.get("init_from"):
    state = warm_start.warm_start(state, state_shardings, config.init_from,
                                  task.codebook_size)
  step = int(jax.device_get(state.step))

  replicated = sharding_lib.replicated(mesh)
  batch_sharding = sharding_lib.batch_sharding(mesh)
  # Host copies are identical on every process, so each can place them on
  # its own devices (no cross-host transfer).
  extras = jax.device_put(jax.device_get(task.extras), replicated)
  extras_sharding = jax.tree_util.tree_map(lambda _: replicated, task.extras)
  batch_shardings = {input_pipeline.batch_key(source): batch_sharding,
                     "labels": batch_sharding}
  programs = {}

  def train_step(step_number: int):
    """The jitted step of this step's phase (compiled on first use)."""
    phase = task.phase(step_number) if task.phase else None
    if phase not in programs:
      programs[phase] = jax.jit(
          functools.partial(task.step, phase=phase),
          in_shardings=(state_shardings, batch_shardings, replicated,
                        extras_sharding),
          out_shardings=(state_shardings, replicated), donate_argnums=(0,))
    return programs[phase]
  # Replicated output: every process can read the images (multi-host safe).
  preview = jax.jit(task.preview, out_shardings=replicated)

  writer = monitoring.MetricWriter(workdir,
                                   enabled=jax.process_index() == 0)
  if step == 0:
    _log_parameters(workdir, state.params)
  progress = monitoring.Progress(config.num_train_steps,
                                 config.log_every_steps, first_step=step)
  config_dict = config.to_dict()
  batches = input_pipeline.local_batches(loader, next_batch)
  last_metrics: dict[str, float] = {}

  def save() -> None:
    # Never let a non-finite state overwrite the last good checkpoint.
    if last_step_metrics is not None:
      check_finite(jax.device_get(last_step_metrics), step)
    ckpt.save(step, state, next_batch=next_batch, config=config_dict)

  last_step_metrics = None
  in_flight = sharding_lib.InFlight()  # a bounded queue of dispatched steps
  try:
    with sharding_lib.mesh_context(mesh, rules), _PreemptionFlag() as flag:
      while step < config.num_train_steps:
        batch = input_pipeline.to_global(next(batches), batch_sharding)
        state, last_step_metrics = train_step(step)(
            state, batch, jax.random.fold_in(train_rng, step), extras)
        in_flight.push(last_step_metrics)
        step += 1
        next_batch += 1
        speed = progress(step)
        if step % config.log_every_steps == 0 or step == config.num_train_steps:
          last_metrics = {k: float(v) for k, v in
                          jax.device_get(last_step_metrics).items()}
          check_finite(last_metrics, step)
          writer.write_scalars(step, {**last_metrics, **speed})
        if config.preview_every_steps and (
            step % config.preview_every_steps == 0 or
            step == config.num_train_steps):
          _write_preview(workdir, writer, step,
                         preview(state, batch, extras))
        preempted = flag.event.is_set() or ckpt.reached_preemption(step)
        if step % config.checkpoint_every_steps == 0 or preempted or (
            step == config.num_train_steps):
          save()
        if preempted:
          logging.warning("preempted at step %d: checkpoint saved", step)
          break
  finally:
    ckpt.close()
    writer.close()
  return last_metrics


def _write_preview(workdir: epath.Path, writer, step: int, images) -> None:
  images = np.asarray(jax.device_get(images))
  grid = imageio.image_grid(images, columns=tasks.PREVIEW_IMAGES)
  if jax.process_index() == 0:
    imageio.write_image(workdir / "previews" / f"step_{step:08d}.png", grid)
    writer.write_images(step, {"preview": grid[None]})
