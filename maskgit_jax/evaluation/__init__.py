"""Sample-quality evaluation: Frechet distance, Inception Score,
precision/recall, the FID Inception network and a small demo classifier."""
