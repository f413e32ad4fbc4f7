"""What ``train.py`` and ``sample.py`` share: one-line errors, exit status 2.

A user's mistake (a bad flag value, an unknown ``--config.`` field, a missing
checkpoint) is reported as a single ``error: ...`` line on stderr with exit
status 2, the Unix convention for a usage error; a bug still gives a
traceback and status 1.
"""

import sys

from absl import app
from absl import flags


def fail(message):
  """Prints ``error: message`` to stderr and exits with status 2."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def _parse_flags(argv):
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:  # absl would print two lines and exit 1
    fail(e)
  except (AttributeError, KeyError) as e:  # --config.<unknown field>=...
    name = str(e.args[0] if e.args else e).strip("'\"")
    fail(f"unknown config field '{name}' in a --config override")


def run(main):
  """``absl.app.run(main)`` with flag errors reported in one line."""
  app.run(main, flags_parser=_parse_flags)
