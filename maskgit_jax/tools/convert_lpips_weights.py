"""Writes the LPIPS-VGG weights file that the perceptual loss loads.

Nothing is downloaded. You provide two PyTorch files:

  --vgg  torchvision's ImageNet VGG16 weights (``vgg16-397923af.pth``, the file
         ``torchvision.models.vgg16(weights="IMAGENET1K_V1")`` caches under
         ``~/.cache/torch/hub/checkpoints/``);
  --lin  the LPIPS linear-layer weights shipped inside the ``lpips`` pip
         package (``site-packages/lpips/weights/v0.1/vgg.pth``).

Usage::

    python -m maskgit_jax.tools.convert_lpips_weights --vgg vgg16-397923af.pth \
        --lin .../lpips/weights/v0.1/vgg.pth --out lpips_vgg.npz

then set ``config.losses.perceptual_weights = "lpips_vgg.npz"``. Needs torch
(CPU build is enough); files are read with ``weights_only=True``.
"""

import argparse
import sys

import numpy as np

from maskgit_jax.models import lpips


def _load(path: str) -> dict:
  import torch  # pylint: disable=g-import-not-at-top
  state = torch.load(path, map_location="cpu", weights_only=True)
  return {k: v.numpy() for k, v in state.items()}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--vgg", required=True)
  parser.add_argument("--lin", required=True)
  parser.add_argument("--out", required=True)
  args = parser.parse_args(argv)
  try:
    arrays = lpips.from_torch_state_dicts(_load(args.vgg), _load(args.lin))
  except KeyError as e:
    print(f"error: missing weight {e} in the input files", file=sys.stderr)
    return 1
  except ImportError:
    print("error: this conversion needs torch (pip install torch)",
          file=sys.stderr)
    return 1
  np.savez(args.out, **arrays)
  lpips.load_params(args.out)  # validates the written layout
  print(f"wrote {args.out} ({len(arrays)} arrays)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
