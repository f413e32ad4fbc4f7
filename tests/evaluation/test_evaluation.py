"""Evaluation metrics against closed forms and constructed cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import linalg

from maskgit_jax.evaluation import classifier as classifier_lib
from maskgit_jax.evaluation import inception
from maskgit_jax.evaluation import metrics


def _closed_form(mu1, s1, mu2, s2):
  """Frechet distance via the symmetric form tr((s1^1/2 s2 s1^1/2)^1/2)."""
  root1 = linalg.sqrtm(s1).real
  cross = linalg.sqrtm(root1 @ s2 @ root1).real
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
               - 2 * np.trace(cross))


def test_frechet_distance_diagonal_gaussians():
  rng = np.random.default_rng(0)
  mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
  v1, v2 = rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6)
  # Diagonal case: sum (mu1-mu2)^2 + sum (sqrt(v1) - sqrt(v2))^2.
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2))
                                                ** 2)
  got = metrics.frechet_distance(metrics.Statistics(mu1, np.diag(v1)),
                                 metrics.Statistics(mu2, np.diag(v2)))
  np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_frechet_distance_full_covariance():
  rng = np.random.default_rng(1)
  a, b = rng.normal(size=(8, 8)), rng.normal(size=(8, 8))
  s1, s2 = a @ a.T + 0.1 * np.eye(8), b @ b.T + 0.1 * np.eye(8)
  mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
  got = metrics.frechet_distance(metrics.Statistics(mu1, s1),
                                 metrics.Statistics(mu2, s2))
  np.testing.assert_allclose(got, _closed_form(mu1, s1, mu2, s2), rtol=1e-6)
  same = metrics.frechet_distance(metrics.Statistics(mu1, s1),
                                  metrics.Statistics(mu1, s1))
  assert abs(same) < 1e-6


def test_frechet_distance_of_samples_and_singular_covariances():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(4000, 3))
  y = rng.normal(size=(4000, 3)) * 2.0 + 1.0
  # Population value: 3 * 1^2 + 3 * (1 - 2)^2 = 6.
  got = metrics.frechet_distance(metrics.Statistics.of(x),
                                 metrics.Statistics.of(y))
  assert abs(got - 6.0) < 0.3
  # Rank-deficient covariances (fewer samples than dimensions) stay finite.
  few = metrics.Statistics.of(rng.normal(size=(5, 20)))
  assert np.isfinite(metrics.frechet_distance(few, few))
  with pytest.raises(ValueError, match="differ in shape"):
    metrics.frechet_distance(metrics.Statistics.of(x),
                             metrics.Statistics.of(rng.normal(size=(9, 4))))


def test_class_scores_on_constructed_judgements():
  logits = np.array([[3.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 5.0]])
  labels = np.array([0, 1, 1, 1])  # the third is judged class 0
  rng = np.random.default_rng(0)
  features = rng.normal(size=(64, 3))
  shifted = metrics.Statistics.of(features + np.array([2.0, 0.0, 0.0]))
  accuracy, fid = metrics.class_scores(logits, features[:4], labels,
                                       metrics.Statistics.of(features[:4]))
  assert accuracy == 0.75 and abs(fid) < 1e-6  # features equal the reference
  _, fid = metrics.class_scores(np.tile(logits, (16, 1)), features,
                                np.tile(labels, 16), shifted)
  assert fid == pytest.approx(4.0, rel=1e-6)  # only the means differ, by 2


def test_inception_score_on_constructed_logits():
  confident = np.full((100, 10), -1e4)
  confident[np.arange(100), np.arange(100) % 10] = 0.0  # one-hot, balanced
  mean, std = metrics.inception_score(confident, splits=1)
  np.testing.assert_allclose(mean, 10.0, rtol=1e-6)  # = number of classes
  assert std == 0.0
  uniform = np.zeros((100, 10))
  np.testing.assert_allclose(metrics.inception_score(uniform)[0], 1.0)
  collapsed = np.full((100, 10), -1e4)
  collapsed[:, 3] = 0.0  # confident but always the same class
  np.testing.assert_allclose(metrics.inception_score(collapsed)[0], 1.0)


def test_precision_recall_on_constructed_sets():
  rng = np.random.default_rng(3)
  real = rng.uniform(0, 1, (300, 2))
  inside = rng.uniform(0.2, 0.8, (300, 2))  # covers the middle of real only
  p, r = metrics.precision_recall(real, inside, k=3)
  assert p > 0.97  # every fake point lies in the real manifold
  assert 0.2 < r < 0.75  # the real corners are missed
  far = real + 10.0
  assert metrics.precision_recall(real, far, k=3) == (0.0, 0.0)
  same = metrics.precision_recall(real, real, k=3)
  assert same == (1.0, 1.0)


@pytest.mark.slow  # trains or compiles for several seconds
def test_inception_network_features_and_weight_loading():
  shapes = inception.torch_param_shapes()
  assert shapes["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
  assert shapes["Mixed_7c.branch_pool.conv.weight"] == (192, 2048, 1, 1)
  assert shapes["fc.weight"] == (1008, 2048)
  assert shapes["Mixed_6b.branch7x7_2.conv.weight"] == (128, 128, 1, 7)
  rng = np.random.default_rng(0)
  state = {name: rng.normal(0, 0.05, shape).astype(np.float32)
           for name, shape in shapes.items()}
  for name in state:
    if name.endswith("running_var"):
      state[name] = np.abs(state[name]) + 1.0
  state["Conv2d_1a_3x3.bn.num_batches_tracked"] = np.array(7)  # ignored
  variables = inception.from_torch_state_dict(state)
  expected = inception.variables_shapes()
  assert jax.tree_util.tree_map(np.shape, variables) == expected
  np.testing.assert_array_equal(
      variables["params"]["Mixed_5b"]["branch5x5_2"]["conv"]["kernel"],
      state["Mixed_5b.branch5x5_2.conv.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(
      variables["batch_stats"]["Mixed_7b"]["branch1x1"]["bn"]["var"],
      state["Mixed_7b.branch1x1.bn.running_var"])
  features = inception.InceptionFeatures(variables, batch_size=2)(
      rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8))
  assert features["pool"].shape == (3, inception.FID_FEATURES)
  assert features["logits"].shape == (3, inception.NUM_LOGITS)
  assert np.isfinite(features["pool"]).all() and features["pool"].min() >= 0
  # 299x299 input goes through unchanged by the resize.
  out = jax.jit(inception.FIDInception().apply)(variables,
                                                jnp.zeros((1, 299, 299, 3)))
  assert out["pool"].shape == (1, 2048)
  del state["fc.bias"]
  with pytest.raises(ValueError, match="missing"):
    inception.from_torch_state_dict(state)
  state["fc.bias"] = np.zeros(5, np.float32)
  with pytest.raises(ValueError, match="fc.bias has shape"):
    inception.from_torch_state_dict(state)


def test_classifier_learns_separable_classes_and_round_trips(tmp_path):
  rng = np.random.default_rng(0)
  labels = np.arange(64) % 2
  images = np.zeros((64, 16, 16, 3), np.uint8)
  images[labels == 1, 4:12, 4:12] = 255  # class 1: a bright square
  images = np.clip(images + rng.integers(0, 40, images.shape), 0,
                   255).astype(np.uint8)
  model = classifier_lib.train(images, labels, 2, steps=60, batch_size=16,
                               log=None)
  assert model.accuracy(images, labels) == 1.0
  assert model.features(images).shape == (64, classifier_lib.FEATURES)
  loaded = classifier_lib.Classifier.load(model.save(tmp_path / "c.npz"))
  np.testing.assert_allclose(loaded.logits(images), model.logits(images),
                             rtol=1e-6, atol=1e-6)


def test_evaluate_cli_with_a_classifier(tmp_path, capsys):
  from maskgit_jax.evaluation import __main__ as evaluate  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  labels = np.arange(40) % 2
  images = np.zeros((40, 16, 16, 3), np.uint8)
  images[labels == 1, 4:12, 4:12] = 255
  images = np.clip(images + rng.integers(0, 40, images.shape), 0,
                   255).astype(np.uint8)
  model = classifier_lib.train(images, labels, 2, steps=60, batch_size=16,
                               log=None)
  model.save(tmp_path / "c.npz")
  np.savez(tmp_path / "samples.npz", images=images, labels=labels)
  np.savez(tmp_path / "ref.npz", arr_0=images)  # an ADM-style batch
  code = evaluate.main([f"--samples={tmp_path / 'samples.npz'}",
                        f"--reference={tmp_path / 'ref.npz'}",
                        f"--classifier={tmp_path / 'c.npz'}",
                        f"--output_json={tmp_path / 'm.json'}"])
  assert code == 0
  import json  # pylint: disable=g-import-not-at-top
  result = json.loads((tmp_path / "m.json").read_text())
  assert result["class_accuracy"] == 1.0
  # Identical sets; 40 points in 128-d make the covariance singular, so
  # the matrix square root is only accurate to about 1e-4 here.
  assert abs(result["fid"]) < 1e-3
  assert result["precision"] == result["recall"] == 1.0
  np.savez(tmp_path / "bad.npz", pictures=images)
  assert evaluate.main([f"--samples={tmp_path / 'bad.npz'}",
                        f"--reference={tmp_path / 'ref.npz'}",
                        f"--classifier={tmp_path / 'c.npz'}"]) == 2
  assert "neither 'images'" in capsys.readouterr().err


def test_fid_takes_the_reference_mu_sigma_over_its_images():
  """ADM's reference batches: FID against the whole-train-set statistics,
  the batch's images for precision and recall only."""
  from maskgit_jax.evaluation import __main__ as evaluate  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(2)

  def network(images):  # a fixed feature map: 4 pixel means
    x = images.astype(np.float64).reshape(len(images), 4, -1).mean(-1)
    return {"pool": x, "logits": np.zeros((len(images), 1000))}

  samples = {"images": rng.integers(0, 255, (64, 8, 8, 3), dtype=np.uint8)}
  ref_images = rng.integers(100, 200, (64, 8, 8, 3), dtype=np.uint8)
  mu, sigma = np.full(4, 30.0), np.diag([4.0, 5.0, 6.0, 7.0])
  with_stats = evaluate.evaluate(
      samples, {"images": ref_images, "mu": mu, "sigma": sigma}, network)
  images_only = evaluate.evaluate(samples, {"images": ref_images}, network)
  fake = network(samples["images"])["pool"]
  expected = _closed_form(fake.mean(0), np.cov(fake, rowvar=False), mu, sigma)
  assert with_stats["fid"] == pytest.approx(expected, rel=1e-6)
  assert with_stats["fid_reference"] == "mu_sigma"
  assert abs(with_stats["fid"] - images_only["fid"]) > 100  # they disagree
  assert with_stats["precision"] == images_only["precision"]
