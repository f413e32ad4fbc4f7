"""One process of the multi-process test (run by tests/runtime/test_multiprocess.py).

Environment: XLA_FLAGS (fake CPU devices), MASKGIT_COORDINATOR /
MASKGIT_NUM_PROCESSES / MASKGIT_PROCESS_ID for a multi-process run (unset:
single process). Arguments: the workdir and a stage-1 workdir. Trains the
tiny animal-MNIST transformer for 3 steps and records which records this
process loaded.
"""

import json
import pathlib
import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")

from maskgit_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
from maskgit_jax.runtime import sharding  # pylint: disable=g-import-not-at-top
from maskgit_jax.trainers import loop  # pylint: disable=g-import-not-at-top
from tests import train_helpers  # pylint: disable=g-import-not-at-top


def main(workdir: str, tokenizer_workdir: str) -> None:
  sharding.maybe_initialize_distributed()
  loaded = []
  original = input_pipeline.LocalBatchLoader.__call__

  def recording(self, batch_index):
    _, indices = self.plan.local_indices(int(batch_index))
    loaded.append([int(batch_index), [int(i) for i in indices]])
    return original(self, batch_index)

  input_pipeline.LocalBatchLoader.__call__ = recording
  config = train_helpers.transformer_config(
      tokenizer_workdir, num_train_steps=3, checkpoint_every_steps=3,
      preview_every_steps=3)
  loop.train_and_evaluate(config, workdir)
  report = pathlib.Path(workdir) / f"loaded_{jax.process_index()}.json"
  report.write_text(json.dumps({
      "process_count": jax.process_count(),
      "local_devices": jax.local_device_count(),
      "devices": jax.device_count(),
      "batches": sorted(b for b in loaded if b[0] < 3),
  }))


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2])
