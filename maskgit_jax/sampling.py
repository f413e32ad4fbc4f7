"""From a checkpoint to images: generation and editing with uint8 in and out.

    from maskgit_jax import sampling
    gen = sampling.Generator.from_checkpoint("runs/maskgit")
    images = gen.generate([3, 7], seed=0)        # uint8 [2, H, W, 3]
    filled = gen.inpaint(image, mask, label=3)   # mask: bool [H, W]
    edited = gen.edit(image, (8, 8, 16, 16), label=5)
    wide = gen.panorama(image, width=3 * image.shape[1], label=5)

``sampling.load(path)`` takes any sampling workdir and returns the class
its checkpoint needs: a Generator, or for an autoregressive prior
(``config.stage = "ar"``) an :class:`ARGenerator` (generation, and
completing the bottom of images), for continuous latents
(``config.stage = "continuous"``) a :class:`ContinuousGenerator` (the
Generator's methods).

The public names of :mod:`maskgit_jax.inference`, where the code lives
(options, the Generator, editing tasks, rejection sampling).
"""

from maskgit_jax.inference import (ARGenerator, ARSampleOptions,
                                   ContinuousGenerator, ContinuousOptions,
                                   DecodeOptions, Generator, GuidedLogits,
                                   Samples)
from maskgit_jax.decoding.guidance import CFG_SCHEDULES
from maskgit_jax.inference.loader import load
from maskgit_jax.inference.rejection import Classifier

__all__ = ["ARGenerator", "ARSampleOptions", "CFG_SCHEDULES", "Classifier",
           "ContinuousGenerator", "ContinuousOptions", "DecodeOptions",
           "Generator", "GuidedLogits", "Samples", "load"]
