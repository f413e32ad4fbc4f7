"""The perceptual network trained here: a distance, saved and loaded, and
never the evaluation classifier."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from maskgit_jax.data import input_pipeline
from maskgit_jax.runtime import restore
from maskgit_jax.evaluation import classifier as classifier_lib
from maskgit_jax.models import perceptual
from maskgit_jax.tools import train_perceptual as perceptual_training


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
  images, labels = input_pipeline.load_animal_mnist()
  idx = input_pipeline.animal_mnist_split("train")[:512]
  params = perceptual_training.train(images[idx], labels[idx], 10, steps=30,
                                     log=None)
  path = tmp_path_factory.mktemp("perceptual") / "net.npz"
  perceptual_training.save(path, params, 10)
  return path, images[idx[:8]]


def _blur(images, sigma):
  return np.stack([ndimage.gaussian_filter(im, (sigma, sigma, 0))
                   for im in images])


@pytest.mark.slow  # trains or compiles for several seconds
@pytest.mark.parametrize("mode", perceptual.MODES)
def test_distance_is_zero_for_identical_and_grows_with_blur(weights, mode):
  path, images = weights
  module, params = restore.load_perceptual(path, mode)
  x = jnp.asarray(images, jnp.float32) / 255.0
  distance = jax.jit(lambda a, b: module.apply({"params": params}, a, b))
  np.testing.assert_allclose(distance(x, x), 0.0, atol=1e-6)
  means = [float(distance(x, jnp.asarray(_blur(np.asarray(x), s))).mean())
           for s in (0.5, 1.0, 2.0)]
  assert 0 < means[0] < means[1] < means[2], means


def test_saved_network_loads_back_exactly(weights, tmp_path):
  path, _ = weights
  module, params = restore.load_perceptual(path)
  again = perceptual_training.save(tmp_path / "again.npz", params["net"],
                                   module.num_classes, module.widths)
  _, reloaded = restore.load_perceptual(again)
  jax.tree_util.tree_map(np.testing.assert_array_equal, params, reloaded)
  with pytest.raises(ValueError, match="perceptual_mode must be one of"):
    restore.load_perceptual(path, "pixels")
  with pytest.raises(FileNotFoundError, match="do not exist"):
    restore.load_perceptual(tmp_path / "missing.npz")


def test_the_perceptual_network_is_not_the_evaluation_classifier(weights,
                                                                 tmp_path):
  path, _ = weights
  _, params = restore.load_perceptual(path)
  judge = classifier_lib.SmallCNN(10).init(
      jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))["params"]
  shapes = lambda tree: sorted(
      (jax.tree_util.keystr(k), v.shape)
      for k, v in jax.tree_util.tree_leaves_with_path(tree))
  assert shapes(params["net"]) != shapes(judge)
  assert perceptual_training.SEED != 0  # the judge's seed (demo, classifier)
  # A classifier file is refused as a perceptual network.
  classifier_lib.Classifier(judge, 10).save(tmp_path / "judge.npz")
  with pytest.raises(ValueError, match="not a perceptual network file"):
    restore.load_perceptual(tmp_path / "judge.npz")


@pytest.mark.slow  # trains or compiles for several seconds
def test_tokenizer_trains_with_the_perceptual_network(weights):
  from maskgit_jax.trainers import tasks  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import vqgan_imagenet  # pylint: disable=g-import-not-at-top
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  path, images = weights
  config = vqgan_imagenet.get_config("tiny")
  config.perceptual_network = str(path)
  config.losses.discriminator_start_step = 10
  task = tasks.tokenizer_task(config)
  state = nn.unbox(jax.jit(task.init)(jax.random.PRNGKey(0)))  # as the loop
  batch = {"images": jnp.asarray(images[:, 8:24, 8:24], jnp.float32) / 255}
  step = jax.jit(task.step, static_argnames="phase")  # as the loop does
  _, metrics = step(state, batch, jax.random.PRNGKey(1), task.extras,
                    phase=task.phase(0))
  assert float(metrics["perceptual_loss"]) > 0
  config.perceptual_weights = "lpips.npz"
  with pytest.raises(ValueError, match="not both"):
    tasks.tokenizer_task(config)
