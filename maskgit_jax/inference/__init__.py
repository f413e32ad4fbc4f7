"""Inference: checkpoints to images (generation, editing, rejection sampling).

* :mod:`.options`: :class:`DecodeOptions`, :class:`Samples`.
* :mod:`.generator`: :class:`Generator` (from a checkpoint; generate/sample).
* :mod:`.edit_tasks`: inpaint, box edit, outpaint, panorama.
* :mod:`.rejection`: the paper's classifier rejection sampling.
"""

from maskgit_jax.inference.generator import Generator, GuidedLogits
from maskgit_jax.inference.options import DecodeOptions, Samples

__all__ = ["DecodeOptions", "Generator", "GuidedLogits", "Samples"]
