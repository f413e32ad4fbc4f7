"""Training metrics: the log, a JSON-lines file, and TensorBoard when it can.

Scalars always go to the log (one line per write) and to
``WORKDIR/metrics.jsonl`` (``{"step": int, "name": value, ...}`` per line),
which needs nothing beyond the standard library. TensorBoard event files
are written as well when TensorFlow is installed (``pip install
'maskgit_jax[train]'``; Cloud TPU VMs have it): clu's summary writer needs
it, and it is imported only here, only then, with its start-up lines kept
off the terminal. Without it, training says so once, in one line.

In an object store (``gs://``) a file cannot be appended to: the writer
keeps the run's lines and rewrites ``metrics.jsonl`` at most every
``flush_seconds`` and on close (a resumed run starts from the file's
lines). TensorBoard writes there through TensorFlow's own GCS client, which
ignores ``STORAGE_EMULATOR_HOST``; under an emulator it is left out.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import sys
import time
from typing import Any, Mapping

import numpy as np

from maskgit_jax.runtime import storage

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_HINT = ("TensorBoard event files need TensorFlow (pip install "
                    "'maskgit_jax[train]'); metrics go to {path} and the log")


def tensorboard_available() -> bool:
  """True when TensorFlow (and so clu's TensorBoard writer) is importable."""
  return importlib.util.find_spec("tensorflow") is not None


@contextlib.contextmanager
def _stderr_silenced():
  """Sends file descriptor 2 to /dev/null (TensorFlow's C++ start-up lines
  are written there before any Python logging setting can apply)."""
  sys.stderr.flush()
  saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
  os.dup2(null, 2)
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    os.close(null)


def _summary_writer(logdir):
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  with _stderr_silenced():
    # pylint: disable=g-import-not-at-top
    from clu.metric_writers import summary_writer
    return summary_writer.SummaryWriter(str(logdir))


class MetricWriter:
  """Scalars and images of one run (only process 0 writes files).

  Args:
    workdir: the run's directory.
    enabled: write files (False on processes other than 0).
    tensorboard: write TensorBoard events; None: when TensorFlow exists
      (and the workdir is not in an emulated object store).
    flush_seconds: an object store's file is rewritten at most this often.
  """

  def __init__(self, workdir: storage.PathLike, *, enabled: bool = True,
               tensorboard: bool | None = None, flush_seconds: float = 60.0):
    self.path = storage.path(workdir) / METRICS_FILE
    self.enabled = enabled
    self._tb = None
    self._remote = storage.is_remote(self.path)
    self._lines: list[str] = []
    self._flush_seconds, self._flushed = flush_seconds, time.monotonic()
    if not enabled:
      return
    if self._remote and self.path.exists():
      self._lines = self.path.read_text().splitlines(keepends=True)
    if tensorboard is None:
      tensorboard = tensorboard_available()
      if not tensorboard:
        logging.info(TENSORBOARD_HINT.format(path=self.path))
      elif self._remote and storage.emulated():
        logging.info("TensorBoard events left out: TensorFlow's GCS client "
                     "ignores %s", storage.EMULATOR_VARIABLE)
        tensorboard = False
    if tensorboard:
      self._tb = _summary_writer(os.fspath(self.path.parent))

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    values = {k: float(v) for k, v in scalars.items()}
    logging.info("step %d: %s", step, ", ".join(
        f"{k}={v:.5g}" for k, v in sorted(values.items())))
    if not self.enabled:
      return
    line = json.dumps({"step": int(step), **values}) + "\n"
    if self._remote:
      self._lines.append(line)
      if time.monotonic() - self._flushed >= self._flush_seconds:
        self._flush()
    else:
      self.path.parent.mkdir(parents=True, exist_ok=True)
      with self.path.open("a") as f:
        f.write(line)
    if self._tb is not None:
      self._tb.write_scalars(step, values)

  def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    """``images``: name -> uint8 ``[n, H, W, 3]`` (TensorBoard only)."""
    if self.enabled and self._tb is not None:
      self._tb.write_images(step, images)

  def _flush(self) -> None:
    storage.write_text(self.path, "".join(self._lines))
    self._flushed = time.monotonic()

  def close(self) -> None:
    if self.enabled and self._remote and self._lines:
      self._flush()
    if self._tb is not None:
      self._tb.flush()
      self._tb.close()
      self._tb = None


class Progress:
  """Logs steps/s and the time left every ``every_steps`` steps.

  Calling it returns ``{"steps_per_sec": ...}`` on the steps it reports
  (an empty dict otherwise), for the metric writer.
  """

  def __init__(self, total_steps: int, every_steps: int, first_step: int = 0):
    self.total = int(total_steps)
    self.every = max(int(every_steps), 1)
    self._mark = (int(first_step), time.perf_counter())

  def __call__(self, step: int) -> dict[str, float]:
    if step % self.every and step != self.total:
      return {}
    last_step, last_time = self._mark
    now = time.perf_counter()
    self._mark = (step, now)
    rate = (step - last_step) / max(now - last_time, 1e-9)
    left = (self.total - step) / rate if rate > 0 else float("inf")
    logging.info("step %d/%d (%.1f%%): %.2f steps/s, %.1f min left", step,
                 self.total, 100.0 * step / max(self.total, 1), rate,
                 left / 60)
    return {"steps_per_sec": rate}
