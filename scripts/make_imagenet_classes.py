"""Writes ``maskgit_jax/data/imagenet_classes.tsv``: the 1,000 ImageNet-1k classes.

One line per class id, in the id order every ImageNet model uses (the sorted
WordNet synset ids, as in tensorflow-datasets' ``imagenet2012/labels.txt``):
``synset<TAB>names`` where ``names`` are the synset's WordNet lemmas joined
by ", " (the ILSVRC devkit's ``synset_words.txt`` wording). Nothing is
downloaded: the lemmas come from a file you point at, for example the
``imagenet_synset_to_lemma.txt`` inside a timm wheel::

    pip download timm --no-deps && unzip timm-*.whl \
        'timm/data/_info/imagenet_synset_to_lemma.txt'
    python scripts/make_imagenet_classes.py \
        --lemmas timm/data/_info/imagenet_synset_to_lemma.txt
"""

import argparse
import pathlib
import sys

import tensorflow_datasets as tfds

OUT = (pathlib.Path(__file__).resolve().parents[1] / "maskgit_jax" / "data"
       / "imagenet_classes.tsv")


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--lemmas", required=True,
                      help="a synset<TAB>lemmas file covering ImageNet-1k")
  parser.add_argument("--out", default=str(OUT))
  args = parser.parse_args(argv)
  labels = (pathlib.Path(tfds.__file__).parent / "datasets" / "imagenet2012"
            / "labels.txt")
  synsets = labels.read_text().split()
  lemmas = dict(line.split("\t", 1) for line in
                pathlib.Path(args.lemmas).read_text().splitlines() if line)
  missing = [s for s in synsets if s not in lemmas]
  if len(synsets) != 1000 or missing:
    print(f"error: {len(synsets)} synsets in {labels}, {len(missing)} without "
          f"lemmas in {args.lemmas} (e.g. {missing[:3]})", file=sys.stderr)
    return 1
  pathlib.Path(args.out).write_text(
      "".join(f"{s}\t{lemmas[s].strip()}\n" for s in synsets))
  print(f"wrote {len(synsets)} classes to {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
