"""Writes the FID Inception weights file from pytorch-fid's published weights.

Nothing is downloaded. You provide ``pt_inception-2015-12-05-6726825d.pth``
(a release asset of github.com/mseitzer/pytorch-fid, v0.1.0: the 2015-12-05
TensorFlow FID graph ported to PyTorch) and get an ``.npz`` keyed by the same
state-dict names, which ``maskgit_jax.evaluation.inception.load_params``
reads::

    python -m maskgit_jax.tools.convert_inception_weights \
        --torch pt_inception-2015-12-05-6726825d.pth --out inception_fid.npz

Needs torch (the CPU build is enough); the file is read with
``weights_only=True`` (no code runs).
"""

import argparse
import sys

import numpy as np

from maskgit_jax.evaluation import inception


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--torch", required=True, help="pytorch-fid .pth")
  parser.add_argument("--out", required=True, help="output .npz")
  args = parser.parse_args(argv)
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    print("error: this conversion needs torch (pip install torch)",
          file=sys.stderr)
    return 1
  state = torch.load(args.torch, map_location="cpu", weights_only=True)
  arrays = {name: state[name].numpy() for name in inception.torch_param_shapes()
            if name in state}
  try:
    inception.from_torch_state_dict(arrays)  # names and shapes checked
  except ValueError as e:
    print(f"error: {args.torch}: {e}", file=sys.stderr)
    return 1
  np.savez(args.out, **arrays)
  print(f"wrote {len(arrays)} arrays to {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
