"""JAX's persistent compilation cache, on for the command-line tools.

Every new process compiles its programs from scratch (the Generator's decode,
a training step): a second or more per program on a CPU, minutes for a
full-size model on an accelerator. JAX can keep compiled executables on
disk and load them in later processes; this module switches that on in one
per-user directory::

    from maskgit_jax.runtime import compile_cache
    compile_cache.enable()            # ~/.cache/maskgit_jax/jax (or $XDG_CACHE_HOME)
    compile_cache.enable("/my/dir")   # anywhere

``train.py``, ``sample.py`` and the ``python -m maskgit_jax.*`` tools call
:func:`enable` at start-up. The environment chooses where, or nothing:

* ``MASKGIT_JAX_COMPILE_CACHE=DIR`` uses ``DIR``; ``=off`` (or ``0``,
  ``none``, empty) switches the cache off;
* a cache directory already set for JAX (``JAX_COMPILATION_CACHE_DIR`` or
  ``jax.config``) is left as it is.

Entries are keyed by the program, the devices and the JAX/XLA versions, so
a stale entry is never used: it is simply not found. :func:`exported` keeps
traced programs as well (``exported/``), for callers such as the
Generator whose first call is mostly tracing. Delete the directory to
reclaim the space (:func:`default_dir` says where it is).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
from typing import Callable, Sequence

ENV_VAR = "MASKGIT_JAX_COMPILE_CACHE"
_OFF = ("", "0", "off", "none", "false", "no")
# Programs compiled faster than this are not written (JAX's default is 1 s,
# which leaves out the decode of a small model: its 0.3-1 s compile is most of
# a short sampling run).
MIN_COMPILE_SECONDS = 0.2


def default_dir() -> pathlib.Path:
  """``$XDG_CACHE_HOME/maskgit_jax/jax``, or ``~/.cache/maskgit_jax/jax``."""
  base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
  return pathlib.Path(base) / "maskgit_jax" / "jax"


def enable(directory: str | os.PathLike | None = None, *,
           min_compile_seconds: float = MIN_COMPILE_SECONDS
           ) -> pathlib.Path | None:
  """Turns on JAX's persistent compilation cache; returns its directory.

  Args:
    directory: where to keep compiled programs. None: the environment's
      choice (see the module docstring), else :func:`default_dir`.
    min_compile_seconds: programs that compile faster are not cached.

  Returns:
    The cache directory in use, or None when the environment switched the
    cache off.

  Raises:
    ValueError: ``min_compile_seconds`` is negative.
  """
  import jax  # pylint: disable=g-import-not-at-top
  if min_compile_seconds < 0:
    raise ValueError(
        f"min_compile_seconds must be >= 0, got {min_compile_seconds}")
  if directory is None:
    preset = jax.config.jax_compilation_cache_dir
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip().lower() in _OFF:
      return None
    if env is not None:
      directory = env
    elif preset:
      return pathlib.Path(preset)
    else:
      directory = default_dir()
  path = pathlib.Path(directory).expanduser()
  path.mkdir(parents=True, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", str(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs",
                    float(min_compile_seconds))
  # JAX decides once per process whether it uses the cache (at the first
  # compilation); start that decision afresh so that enabling after
  # something was compiled still takes effect.
  from jax.experimental.compilation_cache import compilation_cache  # pylint: disable=g-import-not-at-top
  compilation_cache.reset_cache()
  return path


_PACKAGE_ROOT = pathlib.Path(__file__).resolve().parents[1]  # maskgit_jax/
_SOURCE_DIGEST: list[str] = []


def source_files() -> list[pathlib.Path]:
  """Every ``.py`` file of the package, in a fixed order."""
  return sorted(_PACKAGE_ROOT.rglob("*.py"))


def _source_digest() -> str:
  """A hash of this package's source files (computed once per process): an
  exported program is never reused after the library's code changed."""
  if not _SOURCE_DIGEST:
    digest = hashlib.sha256()
    for path in source_files():
      digest.update(str(path.relative_to(_PACKAGE_ROOT)).encode())
      digest.update(path.read_bytes())
    _SOURCE_DIGEST.append(digest.hexdigest())
  return _SOURCE_DIGEST[0]


def signature(args) -> tuple:
  """The tree, shapes, dtypes and shardings of a pytree of arrays (hashable)."""
  import jax  # pylint: disable=g-import-not-at-top
  leaves, tree = jax.tree_util.tree_flatten(args)
  return (tree,) + tuple(
      (getattr(leaf, "shape", ()), str(getattr(leaf, "dtype", type(leaf))),
       str(getattr(getattr(leaf, "sharding", None), "spec", None)))
      for leaf in leaves)


def exported(fn: Callable, args: Sequence, key: str) -> Callable:
  """``jax.jit(fn)`` at ``args``' shapes, traced once per machine.

  Tracing and lowering a program (Python work the compilation cache does
  not skip) is most of a warm process's first call. With the cache on, the
  traced program is serialised with ``jax.export`` next to the compiled
  ones, and later processes deserialise it instead of tracing ``fn``;
  compiling it then hits the compilation cache.

  Args:
    fn: the function; ``key`` must name everything it closes over that
      shapes the program (models, static options).
    args: example arguments (arrays, possibly sharded): the program's shapes.
    key: text identifying ``fn``'s closure. The package's source, the JAX
      version, the devices and ``args``' shapes, dtypes and shardings are
      added to it.

  Returns:
    A callable taking arguments like ``args``; plain ``jax.jit(fn)`` when
    the cache is off or the program cannot be exported.
  """
  import jax  # pylint: disable=g-import-not-at-top
  directory = jax.config.jax_compilation_cache_dir
  if not directory:
    return jax.jit(fn)
  devices = jax.devices()
  digest = hashlib.sha256("\n".join([
      key, _source_digest(), jax.__version__, repr(signature(args)),
      f"{len(devices)}x{devices[0].device_kind}"]).encode()).hexdigest()
  path = pathlib.Path(directory) / "exported" / f"{digest}.bin"
  try:
    program = jax.export.deserialize(bytearray(path.read_bytes()))
  except (OSError, ValueError):  # absent or unreadable: trace it again
    try:
      program = jax.export.export(jax.jit(fn))(*args)
      path.parent.mkdir(parents=True, exist_ok=True)
      tmp = path.with_suffix(f".{os.getpid()}.tmp")
      tmp.write_bytes(program.serialize())
      tmp.replace(path)  # atomic: readers never see half a file
    except (ValueError, TypeError, NotImplementedError, OSError):
      return jax.jit(fn)  # not exportable (or not writable): still fine
  return jax.jit(program.call)
