"""Makes ``tests/fixtures/inception_parity.npz``: pytorch-fid's outputs.

pytorch-fid's own FID Inception (``pytorch_fid.inception.InceptionV3`` with
``use_fid_inception=True``: its patched blocks, its bilinear resize to 299
and its [-1, 1] scaling) runs with the random weights
``maskgit_jax.evaluation.inception.random_torch_state(SEED)`` in place of
the published ones (which cannot be downloaded here), on deterministic
images at 32, 256 and 512 px (seed, sizes and images:
``tests/inception_inputs.py``). The fixture keeps the seed, the images'
checksums and the network's 2048-d pool features and 1008 logits;
``tests/evaluation/test_inception_parity.py`` regenerates weights and images from the
seed and checks the Flax network against them.

Run once in a scratch environment, never in ``make install`` (on x86_64
the registry's torchvision is a multi-GB CUDA build)::

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch==2.14.1 torchvision==0.29.1 \
        pytorch-fid jax flax 'etils[epath]' gcsfs
    PYTHONPATH=. /tmp/torchenv/bin/python scripts/make_inception_fixture.py
"""

import argparse
import pathlib
import sys

import numpy as np

from maskgit_jax.evaluation import inception
from tests import inception_inputs

OUT = (pathlib.Path(__file__).resolve().parents[1] / "tests" / "fixtures"
       / "inception_parity.npz")


def _torch_outputs(state: dict, batch: np.ndarray) -> tuple:
  import torch  # pylint: disable=g-import-not-at-top
  from pytorch_fid import inception as fid  # pylint: disable=g-import-not-at-top
  tensors = {k: torch.from_numpy(v) for k, v in state.items()}
  for name in state:
    if name.endswith("running_var"):
      tensors[name.replace("running_var", "num_batches_tracked")] = (
          torch.tensor(0))
  fid.load_state_dict_from_url = lambda *a, **k: tensors  # no download
  net = fid.InceptionV3([fid.InceptionV3.DEFAULT_BLOCK_INDEX],
                        resize_input=True, normalize_input=True,
                        use_fid_inception=True).eval()
  fc = fid.fid_inception_v3().eval().fc
  x = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255.0
  with torch.no_grad():
    pool = net(x)[0][:, :, 0, 0]
    logits = fc(pool)
  return pool.numpy(), logits.numpy()


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default=str(OUT))
  args = parser.parse_args(argv)
  import pytorch_fid  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  seed = inception_inputs.SEED
  state = inception.random_torch_state(seed)
  out = {"seed": np.array(seed), "sizes": np.array(inception_inputs.SIZES),
         "weights_checksum": np.array(
             sum(float(np.abs(v).sum(dtype=np.float64))
                 for v in state.values()))}
  for size in inception_inputs.SIZES:
    batch = inception_inputs.images(size)
    pool, logits = _torch_outputs(state, batch)
    out[f"images_checksum_{size}"] = np.array(batch.sum(dtype=np.int64))
    out[f"pool_{size}"], out[f"logits_{size}"] = pool, logits
  out["versions"] = np.array(f"torch {torch.__version__}, pytorch-fid "
                             f"{pytorch_fid.__version__}")
  np.savez_compressed(args.out, **out)
  print(f"wrote {args.out}: pool {out['pool_32'].shape}, {out['versions']}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
