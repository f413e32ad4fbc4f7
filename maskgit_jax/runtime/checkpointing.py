"""Orbax checkpoints under ``WORKDIR/checkpoints``: save, resume, fall back.

A checkpoint step holds three items:

* ``state``: the train state pytree (params, EMA params, optimizer state,
  step), saved sharded and restored straight into the target shardings;
* ``data``: JSON ``{"next_batch": int}``, the data iterator position;
* ``config``: JSON of the ConfigDict, so sampling needs no config flag.

Saves are asynchronous; :meth:`Checkpointer.close` waits for them. Orbax
writes each step to a temporary folder and renames it when complete, so a
killed save never looks finished; a finished step that fails to restore
(corrupted files) is reported and the previous good step is used instead.
"""

from __future__ import annotations

import logging
from typing import Any

import jax
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp

from maskgit_jax.runtime import storage

STATE, DATA, CONFIG = "state", "data", "config"


class Checkpointer:
  """Thin wrapper over ``ocp.CheckpointManager`` for training workdirs.

  The caller decides when to save (interval, preemption, end of training);
  :meth:`save` always writes.

  Args:
    workdir: the run's directory; checkpoints go to ``workdir/checkpoints``.
    max_to_keep: how many steps to keep (older ones are deleted).
    async_save: write in a background thread.
  """

  def __init__(self, workdir: storage.PathLike, *, max_to_keep: int = 3,
               async_save: bool = True):
    self.directory = storage.absolute(workdir) / "checkpoints"
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            enable_async_checkpointing=async_save,
            create=True),
        item_handlers=_handlers())

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def save(self, step: int, state: Any, *, next_batch: int,
           config: dict) -> None:
    """Writes ``state``, the data position and the config at ``step``."""
    self.manager.save(
        step,
        args=ocp.args.Composite(**{
            STATE: ocp.args.StandardSave(state),
            DATA: ocp.args.JsonSave({"next_batch": int(next_batch)}),
            CONFIG: ocp.args.JsonSave(config),
        }),
        force=True)

  def reached_preemption(self, step: int) -> bool:
    """True when the runtime reports a preemption (e.g. TPU maintenance)."""
    return bool(self.manager.reached_preemption(step))

  def restore(self, step: int, abstract_state: Any
              ) -> tuple[Any, dict, dict]:
    """``(state, data, config)`` of ``step``, state placed like ``abstract_state``."""
    restored = self.manager.restore(
        step,
        args=ocp.args.Composite(**{
            STATE: ocp.args.StandardRestore(abstract_state),
            DATA: ocp.args.JsonRestore(),
            CONFIG: ocp.args.JsonRestore(),
        }))
    return restored[STATE], restored[DATA], restored[CONFIG]

  def restore_latest_good(self, abstract_state: Any
                          ) -> tuple[int, Any, dict] | None:
    """Restores the newest step that reads back; None when there is none.

    A step that fails to restore while an older one succeeds is corrupted:
    it is reported and moved to ``workdir/corrupt_checkpoints/`` (never
    deleted), so later saves can reuse its step number. When no step
    restores at all the cause is usually a config that no longer matches the
    run, so nothing is moved and a ValueError is raised.

    Returns:
      ``(step, state, data)`` or None when the workdir has no checkpoint.
    """
    failures = []
    for step in reversed(self.all_steps()):
      try:
        state, data, _ = self.restore(step, abstract_state)
      except Exception as e:  # pylint: disable=broad-except
        reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        failures.append((step, reason))
        continue
      for bad_step, bad_reason in failures:
        self._quarantine(bad_step, bad_reason)
      return step, state, data
    if failures:
      step, reason = failures[0]
      raise ValueError(
          f"no checkpoint in {self.directory} could be restored (newest, step "
          f"{step}: {reason}); does the config match the one of this run?")
    return None

  def _quarantine(self, step: int, reason: str) -> None:
    target = self.directory.parent / "corrupt_checkpoints" / str(step)
    message = (f"checkpoint step {step} in {self.directory} is corrupted "
               f"({reason}); moved to {target}, resuming from an older step")
    logging.error(message)
    print(f"WARNING: {message}", flush=True)
    if jax.process_index() == 0:
      target.parent.mkdir(exist_ok=True)
      if target.exists():
        target.rmtree()
      (self.directory / str(step)).rename(target)
    multihost_utils.sync_global_devices(f"quarantine_checkpoint_{step}")
    self.manager.reload()

  def close(self) -> None:
    """Waits for pending asynchronous saves and releases the manager."""
    self.manager.wait_until_finished()
    self.manager.close()


def write_once(workdir: storage.PathLike, state: Any, config: dict,
               step: int = 0) -> None:
  """Writes one complete checkpoint (an import or a built model) and waits
  for it: a workdir every loader reads like a training run's."""
  ckpt = Checkpointer(workdir, async_save=False)
  try:
    ckpt.save(step, state, next_batch=0, config=config)
  finally:
    ckpt.close()


def _handlers() -> dict[str, ocp.CheckpointHandler]:
  """The handler of each item: how it is written and read back."""
  return {STATE: ocp.StandardCheckpointHandler(),
          DATA: ocp.JsonCheckpointHandler(),
          CONFIG: ocp.JsonCheckpointHandler()}


def _reader(workdir: storage.PathLike, step: int | None
            ) -> tuple[ocp.CheckpointManager, int]:
  """A manager over an existing ``workdir/checkpoints`` and the step to read.

  Reading goes through the same ``CheckpointManager`` layout that
  :class:`Checkpointer` writes (step folders holding the step metadata and
  one folder per item), so Orbax finds every metadata file it expects.

  Raises:
    FileNotFoundError: when there is no such checkpoint.
  """
  directory = storage.absolute(workdir) / "checkpoints"
  if not directory.is_dir():
    raise FileNotFoundError(f"no checkpoint in {directory}")
  manager = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(create=False),
      item_handlers=_handlers())
  steps = sorted(manager.all_steps())
  if step is None and steps:
    step = steps[-1]
  if step is None or step not in steps:
    manager.close()
    raise FileNotFoundError(
        f"no checkpoint {'' if step is None else f'step {step} '}in "
        f"{directory}")
  return manager, step


def latest_step(workdir: storage.PathLike) -> int:
  """The newest checkpoint step in ``workdir`` (FileNotFoundError if none)."""
  manager, step = _reader(workdir, None)
  manager.close()
  return step


def read_config(workdir: storage.PathLike, step: int | None = None) -> dict:
  """The config saved with a checkpoint (default: the latest step)."""
  manager, step = _reader(workdir, step)
  try:
    return manager.restore(step, args=ocp.args.Composite(**{
        CONFIG: ocp.args.JsonRestore()}))[CONFIG]
  finally:
    manager.close()


def abstract_like(tree: Any, shardings: Any) -> Any:
  """ShapeDtypeStructs of ``tree`` carrying ``shardings`` (restore targets)."""
  return jax.tree_util.tree_map(
      lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
      tree, shardings)


def restore_state_tree(workdir: storage.PathLike, step: int | None = None,
                       sharding: jax.sharding.Sharding | None = None) -> Any:
  """A checkpoint's state tree, whatever topology saved it (for inference).

  Args:
    workdir: a training workdir (or imported checkpoint dir).
    step: the step to read (default: latest).
    sharding: where every array goes (default: the first local device).

  Returns:
    The saved state as a nested dict of arrays (``params``, ...).

  Raises:
    FileNotFoundError: when there is no checkpoint.
  """
  manager, step = _reader(workdir, step)
  sharding = sharding or jax.sharding.SingleDeviceSharding(
      jax.local_devices()[0])
  try:
    metadata = manager.item_metadata(step)[STATE]
    target = jax.tree_util.tree_map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding),
        metadata)
    return manager.restore(step, args=ocp.args.Composite(**{
        STATE: ocp.args.StandardRestore(target)}))[STATE]
  finally:
    manager.close()
