"""Parameters-only export: what sampling needs, without the optimizer.

A training workdir keeps the optimizer state (about 3x the parameters), the
discriminator and several steps. ::

    python -m maskgit_jax.tools.export --workdir runs/maskgit --out exported/maskgit

writes one checkpoint (the chosen step, default the latest) holding only the
EMA parameters (``--weights=raw``: the raw ones) and the config; a
stage-2 export carries its tokenizer's parameters in ``OUT/tokenizer``, so
the export is self-contained. ``Generator.from_checkpoint(OUT)``,
``sample.py --checkpoint=OUT`` and ``config.init_from=OUT`` read it like a
workdir. ``config.export`` records the source, step and choice of weights.
Works for tokenizer, MaskGIT, MAGE and autoregressive-prior workdirs, local
or ``gs://``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import jax.numpy as jnp

from maskgit_jax.runtime import checkpointing
from maskgit_jax.runtime import cli
from maskgit_jax.runtime import restore
from maskgit_jax.runtime import storage

SAMPLERS = ("transformer", "mage", "ar")


def _copy(workdir, out, step: int, config: dict, use_ema: bool) -> None:
  """Writes step ``step`` of ``workdir`` (its ``config``) to ``out``,
  params only."""
  params = restore.chosen_params(
      checkpointing.restore_state_tree(workdir, step), use_ema)
  config = dict(config, export={"source": str(workdir), "step": step,
                                "ema": use_ema})
  checkpointing.write_once(out, {"step": jnp.asarray(step, jnp.int32),
                                 "params": params}, config, step=step)


def export(workdir: storage.PathLike, out: storage.PathLike, *,
           step: int | None = None, use_ema: bool = True) -> dict[str, Any]:
  """Writes the export described in the module docstring.

  Returns:
    ``{"stage", "step", "tokenizer"}`` (the tokenizer workdir exported
    beside a stage-2 model, or None).

  Raises:
    FileNotFoundError: no checkpoint (at ``step``) in ``workdir``.
    FileExistsError: ``out`` already holds a checkpoint.
    ValueError: a stage that cannot be exported (a token critic).
  """
  workdir, out = storage.path(workdir), storage.path(out)
  if (out / "checkpoints").exists() or (out / "tokenizer").exists():
    raise FileExistsError(f"{out} already holds an export; choose a new "
                          "--out")
  step = checkpointing.latest_step(workdir) if step is None else step
  config = checkpointing.read_config(workdir, step)
  stage = config.get("stage")
  if stage not in ("tokenizer",) + SAMPLERS:
    raise ValueError(f"{workdir} is a {stage!r} workdir; export takes a "
                     f"tokenizer or one of {SAMPLERS}")
  tokenizer = None
  if stage != "tokenizer":
    tokenizer = restore.resolve_tokenizer(config.get("tokenizer_checkpoint"),
                                          workdir)
    tok_step = checkpointing.latest_step(tokenizer)
    _copy(tokenizer, out / "tokenizer", tok_step,
          checkpointing.read_config(tokenizer, tok_step), use_ema=False)
    config = dict(config, tokenizer_checkpoint="tokenizer")
  _copy(workdir, out, step, config, use_ema)
  return {"stage": stage, "step": step, "tokenizer": tokenizer}


def main(argv=None) -> int:
  parser = cli.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True, help="a training workdir")
  parser.add_argument("--out", required=True, help="a new folder")
  parser.add_argument("--step", type=int, default=None,
                      help="checkpoint step (default: the latest)")
  parser.add_argument("--weights", choices=("ema", "raw"), default="ema",
                      help="the EMA params (default) or the raw ones")

  def run(args):
    summary = export(args.workdir, args.out, step=args.step,
                     use_ema=args.weights == "ema")
    print(f"exported {summary['stage']} step {summary['step']} of "
          f"{args.workdir} to {args.out}")

  return cli.run_args(run, parser, argv)


if __name__ == "__main__":
  sys.exit(main())
