"""Every path a user gives, local or in an object store: one type, one place.

Paths are :class:`etils.epath.Path`, the type Orbax and TFDS use, so
``gs://bucket/run`` stays a bucket path (``pathlib`` turns it into a local
``gs:/bucket/run`` folder). Local relative paths are made absolute where
they are stored or handed to Orbax.

An emulator: setting the standard ``STORAGE_EMULATOR_HOST``
(``http://127.0.0.1:PORT``, the variable Google's own clients read) is all
a user or a test needs. On import this module passes it on to the layers
that want their own setting:

* tensorstore (Orbax's array files): ``TENSORSTORE_GCS_HTTP_URL`` and a
  placeholder ``GOOGLE_AUTH_TOKEN_FOR_TESTING``;
* ``etils.epath``: ``EPATH_USE_TF=false``, because ``tf.io.gfile`` (its
  choice when TensorFlow is installed) ignores emulators, while fsspec's
  ``gcsfs`` honours the variable; gcsfs's bucket-layout probe (a gRPC API
  no emulator serves) is switched off.

Variables the user set already are left alone.
"""

from __future__ import annotations

import io
import os
import uuid
from typing import Mapping, MutableMapping

from etils import epath
import numpy as np

EMULATOR_VARIABLE = "STORAGE_EMULATOR_HOST"
_SCHEMES = ("gs://", "s3://", "az://", "hf://")

PathLike = str | os.PathLike


def configure_emulator(environ: MutableMapping[str, str] = os.environ
                       ) -> str | None:
  """Points every storage layer at ``STORAGE_EMULATOR_HOST``, if it is set.

  Returns:
    The emulator's URL, or None when no emulator is configured.
  """
  host = environ.get(EMULATOR_VARIABLE, "").strip()
  if not host:
    return None
  url = host if "://" in host else f"http://{host}"
  environ.setdefault("TENSORSTORE_GCS_HTTP_URL", url)
  environ.setdefault("GOOGLE_AUTH_TOKEN_FOR_TESTING", "emulator")
  environ.setdefault("EPATH_USE_TF", "false")
  environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
  return url


configure_emulator()  # before any epath backend is chosen (it is cached)


def emulated() -> bool:
  """True when ``STORAGE_EMULATOR_HOST`` points object stores elsewhere."""
  return bool(os.environ.get(EMULATOR_VARIABLE, "").strip())


def is_remote(path: PathLike) -> bool:
  """True for object-store paths (``gs://``, ``s3://``, ...)."""
  return os.fspath(path).startswith(_SCHEMES)


def path(value: PathLike) -> epath.Path:
  """A user's path as an :class:`epath.Path` (``gs://`` kept as such)."""
  return epath.Path(value)


def absolute(value: PathLike) -> epath.Path:
  """:func:`path`, with a local relative path made absolute."""
  p = epath.Path(value)
  return p if is_remote(p) else epath.Path(os.path.abspath(os.fspath(p)))


def require_file(value: PathLike, what: str) -> epath.Path:
  """The path of an existing file; FileNotFoundError naming ``what``."""
  p = path(value)
  if not p.is_file():
    raise FileNotFoundError(f"{what} {p} does not exist")
  return p


def load_npz(value: PathLike) -> dict[str, np.ndarray]:
  """Every array of an ``.npz`` file (local or remote), pickles refused."""
  with path(value).open("rb") as f:
    with np.load(f, allow_pickle=False) as data:
      return {k: data[k] for k in data.files}


def save_npz(value: PathLike, arrays: Mapping[str, np.ndarray]) -> epath.Path:
  """Writes ``arrays`` as ``.npz``; whole or not at all.

  An interrupted write never leaves a file that looks finished (see
  :func:`write_bytes`). Parents are made.
  """
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  return write_bytes(value, buffer.getvalue())


def write_bytes(value: PathLike, data: bytes) -> epath.Path:
  """Writes ``data`` whole or not at all (see :func:`save_npz`).

  Local files go through ``NAME.<unique>.tmp`` and a rename (unique, so
  that processes writing the same file, as every host of a slice writes a
  shared manifest, never take each other's temporary); an object store's
  upload is already all-or-nothing (the object appears when it completes).
  """
  target = path(value)
  target.parent.mkdir(parents=True, exist_ok=True)
  if is_remote(target):
    target.write_bytes(data)
    return target
  temporary = target.parent / f"{target.name}.{uuid.uuid4().hex[:12]}.tmp"
  temporary.write_bytes(data)
  temporary.replace(target)
  return target


def write_text(value: PathLike, text: str) -> epath.Path:
  """Writes ``text`` (UTF-8) through a temporary name."""
  return write_bytes(value, text.encode("utf-8"))
