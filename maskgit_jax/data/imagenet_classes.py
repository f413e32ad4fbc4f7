"""ImageNet-1k class names by id, and ids by name (for the released models).

The released MaskGIT checkpoints are class-conditional on ImageNet's 1,000
classes in the usual id order (sorted WordNet synset ids). ::

    from maskgit_jax.data import imagenet_classes
    imagenet_classes.name(207)            # 'golden retriever'
    imagenet_classes.class_id("goldfish") # 1
    generator.generate([imagenet_classes.class_id("tabby")])

Names are WordNet lemmas (``names(i)`` lists all of a class's; ``name(i)``
is the first). A name is looked up case-insensitively among every lemma,
and a synset id (``"n01443537"``) works too. The data file
``imagenet_classes.tsv`` is made by ``scripts/make_imagenet_classes.py``.
"""

from __future__ import annotations

import functools
import importlib.resources

NUM_CLASSES = 1000


@functools.cache
def _table() -> tuple[tuple[str, tuple[str, ...]], ...]:
  text = (importlib.resources.files("maskgit_jax.data")
          / "imagenet_classes.tsv").read_text(encoding="utf-8")
  rows = []
  for line in text.splitlines():
    synset, lemmas = line.split("\t")
    rows.append((synset, tuple(n.strip() for n in lemmas.split(","))))
  return tuple(rows)


@functools.cache
def _index() -> dict[str, tuple[int, ...]]:
  index: dict[str, list[int]] = {}
  for i, (synset, lemmas) in enumerate(_table()):
    for key in {synset.lower(), *(n.lower() for n in lemmas)}:
      index.setdefault(key, []).append(i)
  return {k: tuple(v) for k, v in index.items()}


def _check_id(class_id: int) -> int:
  if not 0 <= int(class_id) < NUM_CLASSES:
    raise ValueError(f"ImageNet class id {class_id} is outside "
                     f"[0, {NUM_CLASSES})")
  return int(class_id)


def names(class_id: int) -> tuple[str, ...]:
  """Every WordNet lemma of class ``class_id`` (0..999), most common first."""
  return _table()[_check_id(class_id)][1]


def name(class_id: int) -> str:
  """The first name of class ``class_id`` (0..999)."""
  return names(class_id)[0]


def synset(class_id: int) -> str:
  """The WordNet synset id of class ``class_id`` (``"n01440764"`` for 0)."""
  return _table()[_check_id(class_id)][0]


def class_id(query: str) -> int:
  """The id of the class named ``query`` (any lemma, or a synset id).

  Raises:
    KeyError: no class has that name, or several do (``"crane"`` is both a
      bird and a machine); the message lists the candidates.
  """
  key = query.strip().lower()
  ids = _index().get(key)
  if ids is None:
    close = sorted(k for k in _index() if key and key in k)[:5]
    raise KeyError(f"no ImageNet class is named {query!r}"
                   + (f"; names containing it: {close}" if close else ""))
  if len(ids) > 1:
    listed = ", ".join(f"{i} ({', '.join(names(i)[:2])})" for i in ids)
    raise KeyError(f"{query!r} names {len(ids)} ImageNet classes: {listed}; "
                   "pass the id or another of its names")
  return ids[0]
