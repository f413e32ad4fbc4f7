"""LPIPS (Zhang et al., 2018) with a VGG16 trunk, for the perceptual loss.

Weights are never downloaded: they load from an ``.npz`` file the user
provides (see :func:`load_params` for its layout and
``maskgit_jax/tools/convert_lpips_weights.py`` to make it from the PyTorch ``lpips``
package and torchvision's VGG16). With random weights the network still runs
(tests use that), but the distance is only meaningful with trained ones.

Distance: both images go through VGG16; at the five taps relu1_2, relu2_2,
relu3_3, relu4_3 and relu5_3 features are unit-normalised over channels,
their squared difference is weighted per channel by the learned ``lin``
vectors, averaged over space, and summed over taps.
"""

from __future__ import annotations

from typing import Any

from etils import epath
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Dtype = Any

# (channels, convs) per VGG16 block; the tap is the last ReLU of each block.
VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
# LPIPS input normalisation for images in [-1, 1].
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def param_shapes() -> dict[str, tuple[int, ...]]:
  """Every array of the weights file: name -> shape (the documented layout).

  ``vgg_{i}/kernel`` is ``[3, 3, in, out]`` (HWIO) and ``vgg_{i}/bias``
  ``[out]`` for the 13 VGG16 convolutions in order; ``lin_{l}/kernel`` is the
  non-negative channel weight vector ``[channels]`` of tap l.
  """
  shapes, in_ch, i = {}, 3, 0
  for channels, convs in VGG16_BLOCKS:
    for _ in range(convs):
      shapes[f"vgg_{i}/kernel"] = (3, 3, in_ch, channels)
      shapes[f"vgg_{i}/bias"] = (channels,)
      in_ch, i = channels, i + 1
  for l, (channels, _) in enumerate(VGG16_BLOCKS):
    shapes[f"lin_{l}/kernel"] = (channels,)
  return shapes


def _normalize(x: jax.Array) -> jax.Array:
  return x / (jnp.sqrt(jnp.sum(x**2, axis=-1, keepdims=True)) + 1e-10)


class LPIPS(nn.Module):
  """``(images_a, images_b)`` ``[b, H, W, 3]`` in [0, 1] -> distances ``[b]``."""

  dtype: Dtype = jnp.float32

  def features(self, x: jax.Array) -> list[jax.Array]:
    x = (2.0 * x - 1.0 - jnp.asarray(SHIFT)) / jnp.asarray(SCALE)
    x = x.astype(self.dtype)
    taps, i = [], 0
    for block, (channels, convs) in enumerate(VGG16_BLOCKS):
      if block:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      for _ in range(convs):
        x = nn.relu(nn.Conv(channels, (3, 3), padding=((1, 1), (1, 1)),
                            dtype=self.dtype, name=f"vgg_{i}")(x))
        i += 1
      taps.append(x.astype(jnp.float32))
    return taps

  @nn.compact
  def __call__(self, images_a: jax.Array, images_b: jax.Array) -> jax.Array:
    batch = images_a.shape[0]
    both = self.features(jnp.concatenate([images_a, images_b], axis=0))
    distance = jnp.zeros((batch,), jnp.float32)
    for l, feats in enumerate(both):
      diff = (_normalize(feats[:batch]) - _normalize(feats[batch:])) ** 2
      weight = self.param(f"lin_{l}", nn.initializers.ones,
                          (feats.shape[-1],), jnp.float32)
      distance += jnp.mean(jnp.sum(diff * weight, axis=-1), axis=(1, 2))
    return distance


def load_params(path) -> dict:
  """Reads LPIPS weights from an ``.npz`` file into the module's params tree.

  The file holds exactly the arrays of :func:`param_shapes` (float32).

  Raises:
    FileNotFoundError: when ``path`` does not exist.
    ValueError: naming every missing, unexpected or wrongly shaped array.
  """
  path = epath.Path(path)
  if not path.exists():
    raise FileNotFoundError(
        f"LPIPS weights file {path} does not exist; make one with "
        "maskgit_jax/tools/convert_lpips_weights.py or disable the perceptual loss")
  with path.open("rb") as f, np.load(f, allow_pickle=False) as data:
    arrays = {k: np.asarray(data[k], np.float32) for k in data.files}
  expected = param_shapes()
  problems = [f"missing {k}" for k in expected if k not in arrays]
  problems += [f"unexpected {k}" for k in arrays if k not in expected]
  problems += [f"{k} has shape {arrays[k].shape}, expected {s}"
               for k, s in expected.items()
               if k in arrays and arrays[k].shape != s]
  if problems:
    raise ValueError(f"bad LPIPS weights file {path}: " + "; ".join(problems))
  params: dict = {}
  for name, value in arrays.items():
    module, leaf = name.split("/")
    if module.startswith("lin_"):
      params[module] = value  # a bare param of the top module
    else:
      params.setdefault(module, {})[leaf] = value
  return params


# Indices of the 13 convolutions in torchvision's ``vgg16().features``.
TORCHVISION_VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def from_torch_state_dicts(vgg: dict, lin: dict) -> dict[str, np.ndarray]:
  """Maps PyTorch state dicts (as numpy arrays) to the weights-file layout.

  Args:
    vgg: torchvision VGG16 state dict: ``features.{i}.weight`` ``[out, in, 3,
      3]`` and ``features.{i}.bias`` for i in ``TORCHVISION_VGG16_CONVS``
      (other keys, e.g. the classifier, are ignored).
    lin: the ``lpips`` package's VGG linear layers: ``lin{l}.model.1.weight``
      ``[1, channels, 1, 1]`` for l in 0..4.

  Returns:
    name -> float32 array, the layout of :func:`param_shapes`.
  """
  out = {}
  for i, index in enumerate(TORCHVISION_VGG16_CONVS):
    weight = np.asarray(vgg[f"features.{index}.weight"], np.float32)
    out[f"vgg_{i}/kernel"] = weight.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    out[f"vgg_{i}/bias"] = np.asarray(vgg[f"features.{index}.bias"], np.float32)
  for l in range(len(VGG16_BLOCKS)):
    out[f"lin_{l}/kernel"] = np.asarray(
        lin[f"lin{l}.model.1.weight"], np.float32).reshape(-1)
  return out
