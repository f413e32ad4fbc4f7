"""Distribution metrics on feature vectors (numpy, float64).

* :func:`frechet_distance` (FID when the features are Inception pool
  features; "classifier FID" with another network's features),
* :func:`inception_score` from class logits,
* :func:`precision_recall`: improved precision and recall (Kynkaanniemi et
  al., 2019) with k-nearest-neighbour balls, k = 3.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from scipy import linalg
from scipy import special


@dataclasses.dataclass(frozen=True)
class Statistics:
  """Mean ``[d]`` and covariance ``[d, d]`` of a feature set (float64)."""

  mu: np.ndarray
  sigma: np.ndarray

  @classmethod
  def of(cls, features: np.ndarray) -> "Statistics":
    """Statistics of ``[n, d]`` features (unbiased covariance; n >= 2)."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
      raise ValueError(f"features must be [n >= 2, d], got shape "
                       f"{features.shape}")
    return cls(features.mean(0), np.cov(features, rowvar=False))


def frechet_distance(a: Statistics, b: Statistics, *, eps: float = 1e-6
                     ) -> float:
  """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` in float64.

  As the standard FID code: if the matrix square root is not finite (a
  near-singular product), ``eps`` is added to both diagonals; a small
  imaginary part from round-off is dropped, a large one is an error.
  scipy's singular-matrix warning is silenced: singular covariances are
  normal here (features that are always zero, e.g. dead ReLU units) and the
  finiteness check above is what decides.
  """
  mu1, mu2 = np.atleast_1d(a.mu), np.atleast_1d(b.mu)
  s1, s2 = np.atleast_2d(a.sigma), np.atleast_2d(b.sigma)
  if mu1.shape != mu2.shape or s1.shape != s2.shape:
    raise ValueError(f"statistics differ in shape: {mu1.shape} vs "
                     f"{mu2.shape}, {s1.shape} vs {s2.shape}")
  diff = mu1 - mu2
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", linalg.LinAlgWarning)
    covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
      offset = np.eye(s1.shape[0]) * eps
      covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f"imaginary component "
                       f"{np.max(np.abs(covmean.imag))} in the matrix "
                       "square root: the covariances are degenerate")
    covmean = covmean.real
  return float(diff.dot(diff) + np.trace(s1) + np.trace(s2)
               - 2.0 * np.trace(covmean))


def class_scores(logits: np.ndarray, features: np.ndarray,
                 labels: np.ndarray, reference: Statistics
                 ) -> tuple[float, float]:
  """A judge's verdict on class-conditional samples: ``(class accuracy,
  Frechet distance of the features to the reference statistics)``.

  Args:
    logits: float ``[n, C]`` judge logits of the samples.
    features: float ``[n, d]`` judge features of the samples.
    labels: int ``[n]`` the classes the samples were drawn for.
    reference: statistics of the judge's features of real images.
  """
  accuracy = float((np.asarray(logits).argmax(-1) == labels).mean())
  return accuracy, float(frechet_distance(Statistics.of(features),
                                          reference))


def inception_score(logits: np.ndarray, *, splits: int = 10
                    ) -> tuple[float, float]:
  """``exp(E_x KL(p(y|x) || p(y)))`` averaged over ``splits`` (mean, std).

  Args:
    logits: ``[n, classes]`` unnormalized log-probabilities.
  """
  logits = np.asarray(logits, np.float64)
  if logits.ndim != 2 or len(logits) < splits:
    raise ValueError(f"logits must be [n >= splits={splits}, classes], got "
                     f"shape {logits.shape}")
  log_p = special.log_softmax(logits, axis=-1)
  scores = []
  for part in np.array_split(log_p, splits):
    log_marginal = special.logsumexp(part, axis=0) - np.log(len(part))
    kl = (np.exp(part) * (part - log_marginal)).sum(-1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))


def _squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
  return np.maximum(d, 0.0)


def _knn_radii(features: np.ndarray, k: int, chunk: int) -> np.ndarray:
  """Squared distance of each point to its k-th nearest other point."""
  radii = np.empty(len(features))
  for start in range(0, len(features), chunk):
    d = _squared_distances(features[start:start + chunk], features)
    # Column 0 of the partition is the point itself (distance 0).
    radii[start:start + chunk] = np.partition(d, k, axis=1)[:, k]
  return radii


def _coverage(queries, support, radii, chunk) -> float:
  """Share of ``queries`` inside at least one support point's ball."""
  inside = 0
  for start in range(0, len(queries), chunk):
    d = _squared_distances(queries[start:start + chunk], support)
    inside += int((d <= radii[None, :]).any(1).sum())
  return inside / len(queries)


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = 3,
                     chunk: int = 1024) -> tuple[float, float]:
  """Improved precision and recall (Kynkaanniemi et al., 2019).

  Precision: share of fake samples inside the real manifold (the union of
  balls around real points reaching their k-th nearest real neighbour);
  recall: share of real samples inside the fake manifold.

  Args:
    real, fake: ``[n, d]`` features (n > k).
  """
  real = np.asarray(real, np.float64)
  fake = np.asarray(fake, np.float64)
  for name, x in (("real", real), ("fake", fake)):
    if x.ndim != 2 or len(x) <= k:
      raise ValueError(f"{name} features must be [n > k={k}, d], got shape "
                       f"{x.shape}")
  precision = _coverage(fake, real, _knn_radii(real, k, chunk), chunk)
  recall = _coverage(real, fake, _knn_radii(fake, k, chunk), chunk)
  return precision, recall
