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
import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

STATE, DATA, CONFIG = "state", "data", "config"


class Checkpointer:
  """Thin wrapper over ``ocp.CheckpointManager`` for training workdirs.

  Args:
    workdir: the run's directory; checkpoints go to ``workdir/checkpoints``.
    max_to_keep: how many steps to keep (older ones are deleted).
    save_interval_steps: :meth:`maybe_save` saves when ``step`` is a
      multiple of it (forced saves ignore it).
    async_save: write in a background thread.
  """

  def __init__(self, workdir: str | pathlib.Path, *, max_to_keep: int = 3,
               save_interval_steps: int = 1000, async_save: bool = True):
    self.directory = pathlib.Path(workdir).absolute() / "checkpoints"
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            save_interval_steps=save_interval_steps,
            enable_async_checkpointing=async_save,
            create=True),
        item_names=(STATE, DATA, CONFIG))

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state: Any, *, next_batch: int,
           config: dict, force: bool = False) -> bool:
    """Saves ``state`` at ``step`` (if due, or always with ``force``)."""
    saved = self.manager.save(
        step,
        args=ocp.args.Composite(**{
            STATE: ocp.args.StandardSave(state),
            DATA: ocp.args.JsonSave({"next_batch": int(next_batch)}),
            CONFIG: ocp.args.JsonSave(config),
        }),
        force=force)
    return bool(saved)

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

    A step that fails to restore is logged as corrupted (with the error) and
    the next older one is tried.

    Returns:
      ``(step, state, data)`` or None.
    """
    for step in reversed(self.all_steps()):
      try:
        state, data, _ = self.restore(step, abstract_state)
        return step, state, data
      except Exception as e:  # pylint: disable=broad-except
        message = (f"checkpoint step {step} in {self.directory} could not be "
                   f"restored and is skipped ({type(e).__name__}: "
                   f"{str(e).splitlines()[0] if str(e) else ''})")
        logging.error(message)
        print(f"WARNING: {message}", flush=True)
    return None

  def close(self) -> None:
    """Waits for pending asynchronous saves and releases the manager."""
    self.manager.wait_until_finished()
    self.manager.close()


def read_config(workdir: str | pathlib.Path, step: int | None = None) -> dict:
  """The config saved with a checkpoint (default: the latest step)."""
  directory = pathlib.Path(workdir).absolute() / "checkpoints"
  manager = ocp.CheckpointManager(directory, item_names=(CONFIG,))
  try:
    step = manager.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {directory}")
    return manager.restore(step, args=ocp.args.Composite(**{
        CONFIG: ocp.args.JsonRestore()}))[CONFIG]
  finally:
    manager.close()


def abstract_like(tree: Any, shardings: Any) -> Any:
  """ShapeDtypeStructs of ``tree`` carrying ``shardings`` (restore targets)."""
  return jax.tree_util.tree_map(
      lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
      tree, shardings)
