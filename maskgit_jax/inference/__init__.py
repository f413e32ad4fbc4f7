"""Inference: checkpoints to images (generation, editing, rejection sampling).

* :mod:`.options`: :class:`DecodeOptions`, :class:`Samples`.
* :mod:`.generator`: :class:`Generator` (from a checkpoint; generate/sample).
* :mod:`.ar_generator`: :class:`ARGenerator`, the same for an
  autoregressive prior (completing the bottom of images is its only edit).
* :mod:`.continuous_generator`: :class:`ContinuousGenerator`, the same for
  masked generation over a VAE's continuous latents (MAR, GIVT).
* :mod:`.token_images`: what all share (tokenizer, devices, batching).
* :mod:`.edit_tasks`: inpaint, box edit, outpaint, panorama.
* :mod:`.rejection`: the paper's classifier rejection sampling.
"""

from maskgit_jax.inference.ar_generator import ARGenerator, ARSampleOptions
from maskgit_jax.decoding.continuous_options import ContinuousOptions
from maskgit_jax.decoding.guidance import GuidedLogits
from maskgit_jax.inference.continuous_generator import ContinuousGenerator
from maskgit_jax.inference.generator import Generator
from maskgit_jax.inference.options import DecodeOptions, Samples

__all__ = ["ARGenerator", "ARSampleOptions", "ContinuousGenerator",
           "ContinuousOptions", "DecodeOptions", "Generator", "GuidedLogits",
           "Samples"]
