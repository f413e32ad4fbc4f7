"""The FID Inception-v3 network in Flax (the 2015-12-05 TensorFlow graph).

This is the network that pytorch-fid and the ADM evaluator use for FID: an
Inception-v3 whose pooling branches average without counting padding, whose
last block max-pools, and whose 2048-d global-average pool gives the FID
features (``pool``) and, through the 1008-way ``fc`` layer, the Inception
Score logits.

No weights ship with the library and nothing downloads. Convert the
published pytorch-fid weights once::

    python -m maskgit_jax.tools.convert_inception_weights \
        --torch pt_inception-2015-12-05-6726825d.pth --out inception_fid.npz

(the ``.pth`` is a release asset of github.com/mseitzer/pytorch-fid,
v0.1.0), then :func:`load_params` reads the ``.npz``. Its names are the
PyTorch state-dict names listed by :func:`torch_param_shapes`.

Checked against pytorch-fid's own network with shared random weights
(:func:`random_torch_state`; ``tests/evaluation/test_inception_parity.py``).

Input: images ``[b, H, W, 3]`` in [0, 1], resized bilinearly to 299x299 and
scaled to [-1, 1] as pytorch-fid does.
"""

from __future__ import annotations

from typing import Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from maskgit_jax.runtime import batching
from maskgit_jax.runtime import storage

FID_FEATURES = 2048
NUM_LOGITS = 1008
INPUT_SIZE = 299


class BasicConv(nn.Module):
  """Conv (no bias) + BatchNorm(eps=1e-3, inference statistics) + ReLU."""

  features: int
  kernel: Sequence[int]
  strides: int = 1
  padding: Sequence[int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    ph, pw = self.padding
    x = nn.Conv(self.features, tuple(self.kernel), self.strides,
                padding=((ph, ph), (pw, pw)), use_bias=False, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _avg_pool(x):
  """3x3 stride-1 average that ignores padding (count_include_pad=False)."""
  pad = ((0, 0), (1, 1), (1, 1), (0, 0))
  total = nn.avg_pool(jnp.pad(x, pad), (3, 3), (1, 1)) * 9.0
  count = nn.avg_pool(jnp.pad(jnp.ones_like(x[..., :1]), pad), (3, 3),
                      (1, 1)) * 9.0
  return total / count


def _max_pool(x, strides=2, padding="VALID"):
  return nn.max_pool(x, (3, 3), (strides, strides), padding=padding)


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(64, (1, 1), name="branch1x1")(x)
    b5 = BasicConv(48, (1, 1), name="branch5x5_1")(x)
    b5 = BasicConv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
    b3 = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = BasicConv(self.pool_features, (1, 1), name="branch_pool")(
        _avg_pool(x))
    return jnp.concatenate([b1, b5, b3, bp], -1)


class InceptionB(nn.Module):

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(384, (3, 3), strides=2, name="branch3x3")(x)
    bd = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
    bd = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = BasicConv(96, (3, 3), strides=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool(x)], -1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c = self.channels_7x7
    row, col = dict(padding=(0, 3)), dict(padding=(3, 0))
    b1 = BasicConv(192, (1, 1), name="branch1x1")(x)
    b7 = BasicConv(c, (1, 1), name="branch7x7_1")(x)
    b7 = BasicConv(c, (1, 7), **row, name="branch7x7_2")(b7)
    b7 = BasicConv(192, (7, 1), **col, name="branch7x7_3")(b7)
    bd = BasicConv(c, (1, 1), name="branch7x7dbl_1")(x)
    bd = BasicConv(c, (7, 1), **col, name="branch7x7dbl_2")(bd)
    bd = BasicConv(c, (1, 7), **row, name="branch7x7dbl_3")(bd)
    bd = BasicConv(c, (7, 1), **col, name="branch7x7dbl_4")(bd)
    bd = BasicConv(192, (1, 7), **row, name="branch7x7dbl_5")(bd)
    bp = BasicConv(192, (1, 1), name="branch_pool")(_avg_pool(x))
    return jnp.concatenate([b1, b7, bd, bp], -1)


class InceptionD(nn.Module):

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(192, (1, 1), name="branch3x3_1")(x)
    b3 = BasicConv(320, (3, 3), strides=2, name="branch3x3_2")(b3)
    b7 = BasicConv(192, (1, 1), name="branch7x7x3_1")(x)
    b7 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv(192, (3, 3), strides=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool(x)], -1)


class InceptionE(nn.Module):
  """``max_pool``: the last block (Mixed_7c) max-pools, Mixed_7b averages."""

  max_pool: bool = False

  @nn.compact
  def __call__(self, x):
    row, col = dict(padding=(0, 1)), dict(padding=(1, 0))
    b1 = BasicConv(320, (1, 1), name="branch1x1")(x)
    b3 = BasicConv(384, (1, 1), name="branch3x3_1")(x)
    b3 = jnp.concatenate([
        BasicConv(384, (1, 3), **row, name="branch3x3_2a")(b3),
        BasicConv(384, (3, 1), **col, name="branch3x3_2b")(b3)], -1)
    bd = BasicConv(448, (1, 1), name="branch3x3dbl_1")(x)
    bd = BasicConv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([
        BasicConv(384, (1, 3), **row, name="branch3x3dbl_3a")(bd),
        BasicConv(384, (3, 1), **col, name="branch3x3dbl_3b")(bd)], -1)
    pooled = (_max_pool(x, 1, ((1, 1), (1, 1))) if self.max_pool
              else _avg_pool(x))
    bp = BasicConv(192, (1, 1), name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], -1)


class FIDInception(nn.Module):
  """images ``[b, H, W, 3]`` in [0, 1] -> ``{"pool": [b, 2048], "logits": [b, 1008]}``."""

  @nn.compact
  def __call__(self, images: jax.Array) -> dict[str, jax.Array]:
    b = images.shape[0]
    x = jax.image.resize(images.astype(jnp.float32),
                         (b, INPUT_SIZE, INPUT_SIZE, 3), "bilinear",
                         antialias=False)
    x = 2.0 * x - 1.0
    x = BasicConv(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = BasicConv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = _max_pool(x)
    x = BasicConv(80, (1, 1), name="Conv2d_3b_1x1")(x)
    x = BasicConv(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = _max_pool(x)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = InceptionC(128, name="Mixed_6b")(x)
    x = InceptionC(160, name="Mixed_6c")(x)
    x = InceptionC(160, name="Mixed_6d")(x)
    x = InceptionC(192, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE(name="Mixed_7b")(x)
    x = InceptionE(max_pool=True, name="Mixed_7c")(x)
    pool = x.mean((1, 2))
    return {"pool": pool, "logits": nn.Dense(NUM_LOGITS, name="fc")(pool)}


def variables_shapes() -> dict:
  """Shapes of the Flax variables (``params`` and ``batch_stats``)."""
  shapes = jax.eval_shape(FIDInception().init, jax.random.PRNGKey(0),
                          jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3)))
  return jax.tree_util.tree_map(lambda s: tuple(s.shape), shapes)


def torch_param_shapes() -> dict[str, tuple[int, ...]]:
  """The pytorch-fid state-dict names and shapes this network reads.

  ``X.conv.weight`` ``[out, in, kh, kw]``; ``X.bn.{weight, bias,
  running_mean, running_var}`` ``[out]``; ``fc.weight`` ``[1008, 2048]`` and
  ``fc.bias`` ``[1008]``. (``num_batches_tracked`` entries are ignored.)
  """
  shapes = variables_shapes()
  out = {}
  for path, shape in flax.traverse_util.flatten_dict(shapes["params"]).items():
    *module, leaf = path
    name = ".".join(module)
    if module[-1] == "conv":
      kh, kw, cin, cout = shape
      out[f"{name}.weight"] = (cout, cin, kh, kw)
    elif module[-1] == "bn":
      out[f"{name}.{ {'scale': 'weight', 'bias': 'bias'}[leaf]}"] = shape
    elif module == ["fc"]:
      out[f"fc.{ {'kernel': 'weight', 'bias': 'bias'}[leaf]}"] = (
          shape[::-1] if leaf == "kernel" else shape)
  for path, shape in flax.traverse_util.flatten_dict(
      shapes["batch_stats"]).items():
    *module, leaf = path
    torch_leaf = {"mean": "running_mean", "var": "running_var"}[leaf]
    out[f"{'.'.join(module)}.{torch_leaf}"] = shape
  return dict(sorted(out.items()))


def from_torch_state_dict(state: dict[str, np.ndarray]) -> dict:
  """pytorch-fid names -> Flax ``{"params", "batch_stats"}`` (checked).

  Raises:
    ValueError: a missing name or a shape that differs from the network's.
  """
  expected = torch_param_shapes()
  missing = sorted(set(expected) - set(state))
  if missing:
    raise ValueError(f"{len(missing)} Inception weights missing, e.g. "
                     f"{missing[:3]}")
  params, stats = {}, {}
  for name, shape in expected.items():
    value = np.asarray(state[name], np.float32)
    if value.shape != shape:
      raise ValueError(f"Inception weight {name} has shape {value.shape}, "
                       f"expected {shape}")
    *module, leaf = name.split(".")
    if leaf == "weight" and module[-1] == "conv":
      params[(*module, "kernel")] = value.transpose(2, 3, 1, 0)
    elif module == ["fc"]:
      params[("fc", "kernel" if leaf == "weight" else "bias")] = (
          value.T if leaf == "weight" else value)
    elif leaf in ("weight", "bias"):
      params[(*module, "scale" if leaf == "weight" else "bias")] = value
    else:
      stats[(*module, "mean" if leaf == "running_mean" else "var")] = value
  return {"params": flax.traverse_util.unflatten_dict(params),
          "batch_stats": flax.traverse_util.unflatten_dict(stats)}


def random_torch_state(seed: int) -> dict[str, np.ndarray]:
  """Random weights under pytorch-fid's names, the same for a seed anywhere.

  What the parity fixture (``tests/fixtures/inception_parity.npz``) was made
  with: He-scaled conv kernels, batch-norm statistics and affines near
  identity, and a ``1/sqrt(2048)`` fc, so activations stay of order one
  through the whole network. Drawn in sorted-name order from
  ``np.random.default_rng(seed)`` in float64, then cast to float32.
  """
  rng = np.random.default_rng(seed)
  state = {}
  for name, shape in torch_param_shapes().items():
    leaf = name.rsplit(".", 1)[-1]
    if name.endswith("conv.weight"):
      fan_in = int(np.prod(shape[1:]))
      value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif name == "fc.weight":
      value = rng.standard_normal(shape) / np.sqrt(shape[1])
    elif leaf in ("weight", "running_var"):
      value = rng.uniform(0.5, 1.5, shape)
    else:  # bn.bias, running_mean, fc.bias
      value = 0.1 * rng.standard_normal(shape)
    state[name] = value.astype(np.float32)
  return state


def load_params(path: storage.PathLike) -> dict:
  """Reads a converted ``.npz`` (pytorch-fid names) into Flax variables."""
  if not storage.path(path).is_file():
    raise FileNotFoundError(
        f"Inception weights {path} do not exist; convert pytorch-fid's "
        "pt_inception-2015-12-05 weights with "
        "maskgit_jax/tools/convert_inception_weights.py (see maskgit_jax/evaluation/"
        "inception.py)")
  return from_torch_state_dict(storage.load_npz(path))


class InceptionFeatures:
  """Batched, jitted FID features and logits of uint8 images."""

  def __init__(self, variables: dict, *, batch_size: int = 100):
    self.model = FIDInception()
    self.variables = variables
    self.batch_size = batch_size
    self._apply = jax.jit(lambda v, x: self.model.apply(
        v, x.astype(jnp.float32) / 255.0))

  def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
    """uint8 ``[n, H, W, 3]`` -> ``{"pool": [n, 2048], "logits": [n, 1008]}``."""
    return batching.map_chunks(lambda x: self._apply(self.variables, x),
                               [np.asarray(images)], self.batch_size)
