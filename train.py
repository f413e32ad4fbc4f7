"""Trains a stage: ``config.stage`` is ``tokenizer``, ``transformer`` (MaskGIT),
``critic`` (a token critic), ``ar`` (the autoregressive prior) or ``mage``
(MAGE, unconditional; ``configs/mage_*.py``).

    python train.py --config=configs/vqgan_animal_mnist.py --workdir=runs/tok
    python train.py --config=configs/maskgit_imagenet.py:256 --workdir=gs://... \
        --config.tokenizer_checkpoint=runs/tok --config.batch_size=256

Re-running the same command resumes from the latest checkpoint in
``--workdir``. Any config field can be overridden with ``--config.a.b=value``.
"""

from absl import flags
from ml_collections import config_flags

from maskgit_jax.runtime import cli

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, optionally with a variant: path.py:variant",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (resumable).")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", None, "On CPU: split the host into this many XLA devices "
    "and train data-parallel over them (4 on 2 cores: the demo tokenizer "
    "step 2.2x faster); see sharding.split_host_cpu.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv  # cli.run refuses stray arguments
  from maskgit_jax.runtime import sharding  # pylint: disable=g-import-not-at-top
  from maskgit_jax.trainers import loop  # pylint: disable=g-import-not-at-top
  if _CPU_DEVICES.value:
    sharding.split_host_cpu(_CPU_DEVICES.value)  # before JAX starts
  sharding.maybe_initialize_distributed()
  loop.train_and_evaluate(cli.config_value(_CONFIG), _WORKDIR.value)


if __name__ == "__main__":
  cli.run(main)
