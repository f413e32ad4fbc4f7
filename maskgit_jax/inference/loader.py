"""One loader for every sampling workdir: the class follows the checkpoint.

``load(path)`` reads the checkpoint's ``stage`` and returns a
:class:`~maskgit_jax.inference.generator.Generator` (``"transformer"``,
``"mage"``) or an :class:`~maskgit_jax.inference.ar_generator.ARGenerator`
(``"ar"``) or a :class:`~maskgit_jax.inference.continuous_generator.
ContinuousGenerator` (``"continuous"``); all share the :class:`~maskgit_jax.inference.token_images.
TokenImages` base (``generate``, ``sample``, ``inpaint``, ``decode_sequences``).
"""

from __future__ import annotations

from maskgit_jax.runtime import restore
from maskgit_jax.runtime import storage
from maskgit_jax.inference import ar_generator
from maskgit_jax.inference import continuous_generator
from maskgit_jax.inference import generator
from maskgit_jax.inference import token_images


def load(path: storage.PathLike, *, critic: storage.PathLike | None = None,
         precision: str = "float32", **kwargs) -> token_images.TokenImages:
  """The generator of workdir ``path`` (``use_ema``, ``step``,
  ``batch_size``, ``devices`` in ``kwargs``).

  Raises:
    FileNotFoundError: no checkpoint at ``path``.
    ValueError: a checkpoint that does not sample (a tokenizer, a critic),
      or options the prior does not take (a critic, a lower precision).
  """
  stage = restore.checkpoint_stage(path)
  if stage == "continuous":
    if critic is not None or precision != "float32":
      raise ValueError("a continuous-token model samples in float32 without "
                       "a token critic (both are MaskGIT's)")
    return continuous_generator.ContinuousGenerator.from_checkpoint(
        path, **kwargs)
  if stage != "ar":
    return generator.Generator.from_checkpoint(
        path, critic=critic, precision=precision, **kwargs)
  if critic is not None:
    raise ValueError("a token critic works with MaskGIT's parallel decode, "
                     "not with an autoregressive prior")
  if precision != "float32":
    raise ValueError("an autoregressive prior samples in float32 only "
                     "(precision applies to MaskGIT's transformer)")
  return ar_generator.ARGenerator.from_checkpoint(path, **kwargs)
