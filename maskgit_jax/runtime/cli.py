"""The one command-line convention of every tool.

``train.py`` and ``sample.py`` (absl flags) and the ``python -m`` tools
(``official``, ``pretokenize``, ``demo``, ``evaluation``,
``trainers.aot``; argparse) share it:

* a user's mistake (a bad flag value, an unknown ``--config.`` field, a
  missing file or checkpoint, a value out of range) is one ``error: ...``
  line on stderr with exit status 2, and nothing is written;
* a bug keeps its traceback (exit status 1): only the exceptions in
  :data:`USER_ERRORS` count as mistakes, and the library raises those for
  bad input only;
* start-up chatter stays off the terminal: TensorFlow's and XLA's start-up
  lines and other libraries' INFO logs (warnings still show); the
  project's own INFO logs (progress, metrics) are kept;
* compiled programs are kept on disk for the next run
  (:mod:`maskgit_jax.runtime.compile_cache`; ``MASKGIT_JAX_COMPILE_CACHE=off``
  switches that off).
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import sys
from typing import Callable, NoReturn, Sequence

# Mistakes in what the user passed. KeyError, AttributeError and TypeError
# are deliberately absent: inside the library they mean a bug.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError,
               NotADirectoryError, IsADirectoryError, PermissionError,
               FloatingPointError)

_PACKAGE_DIR = str(pathlib.Path(__file__).resolve().parents[1])  # maskgit_jax/


def report(message) -> int:
  """Prints ``error: message`` (one line) to stderr; returns 2."""
  text = " ".join(str(message).split("\n")).strip()
  print(f"error: {text}", file=sys.stderr, flush=True)
  return 2


def fail(message) -> NoReturn:
  """Prints ``error: message`` to stderr and exits with status 2."""
  sys.exit(report(message))


class _OwnLogsOnly(logging.Filter):
  """INFO and above from this package and the entry points; WARNING and
  above from everything else."""

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.WARNING:
      return True
    path = os.path.abspath(record.pathname)
    return path.startswith(_PACKAGE_DIR) or os.path.basename(path) in (
        "train.py", "sample.py")


def quiet_startup() -> None:
  """Keeps library start-up chatter off the terminal (call before imports
  of jax-based modules, at the start of a tool)."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.INFO)
  handler = absl_logging.get_absl_handler()
  if not any(isinstance(f, _OwnLogsOnly) for f in handler.filters):
    handler.addFilter(_OwnLogsOnly())
  absl_logging.use_absl_handler()


def start_compile_cache() -> None:
  """:func:`maskgit_jax.runtime.compile_cache.enable`; a directory that cannot be
  created is a warning, not a failure (the run only loses the cache)."""
  from maskgit_jax.runtime import compile_cache  # pylint: disable=g-import-not-at-top
  try:
    compile_cache.enable()
  except OSError as e:
    logging.warning("compilation cache off: %s", e)


def _last_line(error: Exception) -> str:
  """The message of an error that embeds a traceback: its final line."""
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  if any(line.startswith("Traceback") for line in lines):
    return lines[-1]
  return " ".join(lines)


def _parse_absl_flags(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:  # absl would print two lines and exit 1
    name = str(e).split(":", 1)[0]
    fail(f"{name}: {_last_line(e)}" if "Traceback" in str(e) else e)
  except (AttributeError, KeyError) as e:  # --config.<unknown field>=...
    name = str(e.args[0] if e.args else e).strip("'\"")
    fail(f"unknown config field '{name}' in a --config override")
  except OSError:  # an override of a config file that did not load
    fail(_missing_config_message(flags.FLAGS))


def _missing_config_message(flag_values, name: str = "config") -> str:
  path = getattr(flag_values[name], "config_filename", None) or "?"
  return (f"config file {path!r} could not be loaded (does it exist? "
          f"expected --{name}=PATH.py or --{name}=PATH.py:VARIANT)")


def config_value(holder):
  """The ConfigDict of an ``ml_collections.config_flags`` flag.

  Raises:
    FileNotFoundError: the config file could not be loaded (the flag
      library defers that error to the first use of the config).
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  config = holder.value
  try:
    config.get("stage")
  except OSError:
    raise FileNotFoundError(
        _missing_config_message(flags.FLAGS, holder.name)) from None
  return config


def run(main: Callable[[Sequence[str]], None]) -> None:
  """``absl.app.run(main)`` under the convention (absl-flag tools)."""
  from absl import app  # pylint: disable=g-import-not-at-top
  quiet_startup()
  start_compile_cache()

  def guarded(argv):
    if len(argv) > 1:
      fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
      main(argv)
    except USER_ERRORS as e:
      fail(e)

  app.run(guarded, flags_parser=_parse_absl_flags)


class ArgumentParser(argparse.ArgumentParser):
  """argparse that reports a bad command line in one ``error:`` line."""

  def error(self, message: str) -> NoReturn:
    fail(f"{message} (see --help)")


def run_args(main: Callable[[argparse.Namespace], int | None],
             parser: argparse.ArgumentParser,
             argv: Sequence[str] | None = None) -> int:
  """Parses ``argv`` and runs ``main(args)`` under the convention.

  Returns:
    ``main``'s exit status (0 for None), or 2 after reporting a user error
    (a bad command line exits with 2 right away).
  """
  quiet_startup()
  args = parser.parse_args(argv)
  start_compile_cache()
  from absl import flags  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS.is_parsed():  # absl logging would warn about it
    flags.FLAGS.mark_as_parsed()
  try:
    return int(main(args) or 0)
  except USER_ERRORS as e:
    return report(e)
