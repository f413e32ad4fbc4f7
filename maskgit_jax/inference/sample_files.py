"""Many samples to storage in bounded memory: ADM shards, resumable, per host.

The paper's protocol draws 50,000 class-balanced samples (50 per ImageNet
class). They never exist in host memory at once here:

* sample ``i`` has label ``i % num_classes`` and its own key
  ``fold_in(PRNGKey(seed), i)`` (see the Generator), so any split of the
  indices gives the same images;
* indices are cut into shards of ``shard_size``; shard ``k`` is written as
  ``samples_KKKKK_of_NNNNN.npz`` in ADM's layout (``arr_0`` uint8
  ``[n, H, W, 3]``, ``arr_1`` int32 labels ``[n]``), whole or not at all
  (see :func:`maskgit_jax.runtime.storage.write_bytes`);
* process ``p`` of ``P`` writes the shards ``k % P == p`` (a pod slice: each
  host samples on its own devices); a re-run skips finished shards, so an
  interrupted job resumes without duplicates or gaps;
* host memory holds one batch of float images and at most two shards of
  uint8 images (one filling, one being written by a background thread
  while the devices decode the next batch);
* ``sampling.json`` records what the shards were drawn with; a re-run with
  other settings is refused instead of mixing samples;
* :func:`merge` streams the shards into one ADM file (``arr_0``, ``arr_1``)
  for the standard evaluator, again without holding them all.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import json
import os
import re
import tempfile
import zipfile
from typing import Callable

from etils import epath
import numpy as np

from maskgit_jax.runtime import storage

MANIFEST = "sampling.json"
_SHARD = re.compile(r"samples_(\d{5})_of_(\d{5})\.npz")


def shard_name(index: int, count: int) -> str:
  return f"samples_{index:05d}_of_{count:05d}.npz"


def shard_bounds(num_samples: int, shard_size: int) -> list[tuple[int, int]]:
  """``[(start, stop)]`` of every shard: consecutive, covering ``num_samples``."""
  if num_samples < 1 or shard_size < 1:
    raise ValueError(f"num_samples and shard_size must be positive, got "
                     f"{num_samples} and {shard_size}")
  return [(s, min(s + shard_size, num_samples))
          for s in range(0, num_samples, shard_size)]


def _check_manifest(out: epath.Path, manifest: dict) -> None:
  """Writes ``sampling.json``, or refuses settings that differ from it."""
  path = out / MANIFEST
  if path.exists():
    saved = json.loads(path.read_text())
    changed = sorted(k for k in set(saved) | set(manifest)
                     if saved.get(k) != manifest.get(k))
    if changed:
      details = ", ".join(f"{k}: {saved.get(k)!r} -> {manifest.get(k)!r}"
                          for k in changed)
      raise ValueError(f"{out} holds samples drawn with other settings "
                       f"({details}); use another output folder")
    return
  storage.write_text(path, json.dumps(manifest, indent=1, sort_keys=True))


def write_shards(generator, out: storage.PathLike, num_samples: int, *,
                 seed: int = 0, shard_size: int = 1000,
                 process_index: int = 0, process_count: int = 1,
                 progress: Callable[[int, int], None] | None = None,
                 describe: dict | None = None, **options) -> dict[str, int]:
  """Samples ``num_samples`` class-balanced images into ADM shards.

  Args:
    generator: a :class:`~maskgit_jax.inference.generator.Generator` or
      :class:`~maskgit_jax.inference.ar_generator.ARGenerator`.
    out: the folder of the shards (local or ``gs://``).
    num_samples: images in all (over every process).
    seed: sample ``i`` uses ``fold_in(PRNGKey(seed), i)``.
    shard_size: images per file.
    process_index, process_count: this process's share (``k % count``).
    progress: called with ``(images done, images of this process)``.
    describe: what else identifies the run in ``sampling.json`` (the
      checkpoint and step, say).
    **options: the generator's decode options.

  Returns:
    ``{"written": shards written now, "skipped": shards already there}``.

  Raises:
    ValueError: bad counts, or ``out`` holds samples of other settings.
  """
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} is not in "
                     f"[0, {process_count})")
  bounds = shard_bounds(num_samples, shard_size)
  opts = generator.checked_options(**options)
  out = storage.path(out)
  out.mkdir(parents=True, exist_ok=True)
  _check_manifest(out, {
      "num_samples": num_samples, "shard_size": shard_size, "seed": seed,
      "num_classes": generator.num_classes,
      "image_size": generator.image_size,
      "options": json.loads(json.dumps(dataclasses.asdict(opts),
                                       default=str)),
      **(describe or {})})
  mine = [k for k in range(len(bounds)) if k % process_count == process_index]
  todo = [k for k in mine if not (out / shard_name(k, len(bounds))).exists()]
  total = sum(bounds[k][1] - bounds[k][0] for k in todo)
  done = 0
  with concurrent.futures.ThreadPoolExecutor(1) as writer:
    pending = None
    for k in todo:
      start, stop = bounds[k]
      images = np.empty((stop - start, generator.image_size,
                         generator.image_size, 3), np.uint8)
      labels = (np.arange(start, stop) % generator.num_classes).astype(
          np.int32)
      for first in range(start, stop, generator.batch_size):
        last = min(first + generator.batch_size, stop)
        rows = labels[first - start:last - start]
        samples = generator.decode_sequences(
            generator.masked_sequences(rows), rows, seed, opts,
            index_offset=first)
        images[first - start:last - start] = samples.images
        done += last - first
        if progress is not None:
          progress(done, total)
      if pending is not None:
        pending.result()  # at most one shard in flight
      pending = writer.submit(storage.save_npz,
                              out / shard_name(k, len(bounds)),
                              {"arr_0": images, "arr_1": labels})
    if pending is not None:
      pending.result()
  return {"written": len(todo), "skipped": len(mine) - len(todo)}


def shard_files(out: storage.PathLike) -> list[epath.Path]:
  """The finished shards in ``out``, in index order.

  Raises:
    FileNotFoundError: shards are missing (names the first missing index).
  """
  out = storage.path(out)
  found = {}
  for path in out.iterdir() if out.is_dir() else []:
    match = _SHARD.fullmatch(path.name)
    if match:
      found[int(match.group(1))] = (int(match.group(2)), path)
  if not found:
    raise FileNotFoundError(f"no sample shards in {out}")
  count = next(iter(found.values()))[0]
  missing = [k for k in range(count) if k not in found]
  if missing:
    raise FileNotFoundError(
        f"{out} lacks {len(missing)} of {count} shards (first: "
        f"{shard_name(missing[0], count)}); run the same sampling command "
        "again to finish them")
  return [found[k][1] for k in range(count)]


def _npy_header(shape: tuple[int, ...], dtype) -> bytes:
  buffer = io.BytesIO()
  np.lib.format.write_array_header_2_0(
      buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
               "fortran_order": False, "shape": shape})
  return buffer.getvalue()


def merge(out: storage.PathLike, output: storage.PathLike,
          progress: Callable[[int, int], None] | None = None) -> epath.Path:
  """All shards of ``out`` as one ADM ``.npz`` (``arr_0``, ``arr_1``).

  Streams shard by shard into the archive (host memory: one shard); a
  remote ``output`` is written locally first and then uploaded.
  """
  files = shard_files(out)
  labels, shapes = [], set()
  for path in files:  # pass 1: labels and the images' npy headers
    with path.open("rb") as f, zipfile.ZipFile(f) as archive:
      with archive.open("arr_1.npy") as member:
        labels.append(np.lib.format.read_array(member))
      with archive.open("arr_0.npy") as member:
        read_header = (np.lib.format.read_array_header_1_0
                       if np.lib.format.read_magic(member) == (1, 0) else
                       np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(member)
        shapes.add((tuple(shape[1:]), np.dtype(dtype)))
  if len(shapes) != 1 or next(iter(shapes))[1] != np.uint8:
    raise ValueError(f"the shards in {out} differ in image shape or are not "
                     f"uint8: {sorted(str(s) for s in shapes)}")
  image_shape = next(iter(shapes))[0]
  labels = np.concatenate(labels).astype(np.int32)
  output = storage.path(output)
  local = output if not storage.is_remote(output) else None
  handle, scratch = tempfile.mkstemp(
      suffix=".npz", dir=None if local is None else os.fspath(local.parent))
  os.close(handle)
  try:
    with zipfile.ZipFile(scratch, "w", zipfile.ZIP_STORED,
                         allowZip64=True) as archive:
      with archive.open("arr_0.npy", "w", force_zip64=True) as f:
        f.write(_npy_header((len(labels),) + image_shape, np.uint8))
        for i, path in enumerate(files):
          f.write(np.ascontiguousarray(
              storage.load_npz(path)["arr_0"]).tobytes())
          if progress is not None:
            progress(i + 1, len(files))
      with archive.open("arr_1.npy", "w") as f:
        np.lib.format.write_array(f, labels)
    if local is not None:
      os.replace(scratch, os.fspath(local))
      return local
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(scratch, "rb") as src, output.open("wb") as dst:
      while chunk := src.read(64 << 20):
        dst.write(chunk)
    return output
  finally:
    if os.path.exists(scratch):
      os.remove(scratch)

