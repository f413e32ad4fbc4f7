"""``maskgit_jax.parallel_decode``: the public name of
:mod:`maskgit_jax.decoding.parallel_decode` (the same module object, so
attributes read and patched here are that module's).
"""

import sys

from maskgit_jax.decoding import parallel_decode as _module

sys.modules[__name__] = _module
