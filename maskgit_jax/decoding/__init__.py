"""Decoding: turning a model's logits into tokens (algorithms, pure JAX).

The T-step parallel decode (:mod:`.parallel_decode`) with its options
(:mod:`.decode_options`), reveal policies, logit filters, guidance and
re-masking; the autoregressive prior's decode; editing; token conventions.
"""
