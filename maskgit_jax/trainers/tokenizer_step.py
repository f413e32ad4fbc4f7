"""The stage-1 (VQGAN tokenizer) train step: a pure function of the state.

One step updates the generator (encoder, quantizer, decoder) on

    w_rec * reconstruction + w_perc * perceptual + w_adv * GAN_generator
    + commitment + codebook + entropy                        (quantizer losses)

and then the discriminator on ``GAN_discriminator + r1_cost * R1 (+ LeCam)``,
each with its own optimizer (Adam(b1=0, b2=0.99) in the official recipe).
Before ``discriminator_start_step`` the discriminator is left untouched and
the adversarial term is off (``lax.cond``: no discriminator cost is paid).

Optionally, codes whose running usage falls below a threshold are restarted
at random encoder outputs of the batch (``dead_code_restart``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from maskgit_jax.objectives import losses
from maskgit_jax.models import discriminator as discriminator_lib
from maskgit_jax.models import lpips as lpips_lib
from maskgit_jax.models import quantizers
from maskgit_jax.models import vqgan as vqgan_lib


@dataclasses.dataclass(frozen=True)
class LossWeights:
  """Weights and switches of the tokenizer losses (official values default)."""

  reconstruction: str = "l2"
  reconstruction_weight: float = 1.0
  perceptual_weight: float = 0.1
  gan_loss: str = "non_saturating"
  adversarial_weight: float = 0.1
  r1_cost: float = 10.0
  lecam_weight: float = 0.0
  lecam_decay: float = 0.999
  discriminator_start_step: int = 0
  dead_code_restart: bool = False
  usage_decay: float = 0.99
  dead_code_threshold: float = 0.03  # restart codes used < 3% of uniform
  # Lazy R1 (StyleGAN2): the penalty every r1_interval discriminator steps,
  # weighted by r1_interval so that its average strength is unchanged.
  r1_interval: int = 1
  # VQGAN's adaptive weight: adversarial_weight * |grad rec| / |grad adv|
  # at the decoder's last layer (losses.adaptive_weight).
  adaptive_adversarial_weight: bool = False
  ema_decay: float = 0.99  # the "vq_ema" quantizer's codebook averages

  def __post_init__(self):
    losses.reconstruction_loss(self.reconstruction)  # validates the names
    losses.gan_losses(self.gan_loss)
    if int(self.r1_interval) != self.r1_interval or self.r1_interval < 1:
      raise ValueError(f"r1_interval must be a positive integer, got "
                       f"{self.r1_interval}")


@flax.struct.dataclass
class TokenizerState:
  """Everything one tokenizer training step reads and writes.

  Attributes:
    step: int32 scalar.
    params: VQGAN params; disc_params: discriminator params.
    opt_state, disc_opt_state: their optimizer states.
    lecam_ema: float32 ``[2]``: EMAs of D's mean output on real and fake.
    code_usage: float32 ``[codebook_size]``: EMA of each code's share of
      assignments (uniform usage is ``1 / codebook_size``).
  """

  step: jax.Array
  params: Any
  disc_params: Any
  opt_state: Any
  disc_opt_state: Any
  lecam_ema: jax.Array
  code_usage: jax.Array


def adam_optimizer(learning_rate, *, b1: float = 0.0, b2: float = 0.99,
                   grad_clip: float | None = None
                   ) -> optax.GradientTransformation:
  """Adam with the official tokenizer betas and optional global-norm clipping."""
  parts = [optax.clip_by_global_norm(grad_clip)] if grad_clip else []
  parts.append(optax.adam(learning_rate, b1=b1, b2=b2))
  return optax.chain(*parts)


def code_statistics(ids: jax.Array, codebook_size: int
                    ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Histogram share ``[K]``, usage (share of codes used) and perplexity."""
  counts = jnp.bincount(ids.reshape(-1), length=codebook_size)
  share = counts / jnp.maximum(counts.sum(), 1)
  usage = jnp.mean(counts > 0)
  entropy = -jnp.sum(jnp.where(share > 0, share * jnp.log(share), 0.0))
  return share.astype(jnp.float32), usage, jnp.exp(entropy)


@dataclasses.dataclass(frozen=True)
class TokenizerTrainer:
  """Models, optimizers and loss weights; builds and steps a TokenizerState.

  Attributes:
    vqgan: the tokenizer module.
    discriminator: the discriminator module.
    optimizer, disc_optimizer: optax transformations.
    weights: :class:`LossWeights`.
    perceptual: an LPIPS module, or None to disable the perceptual loss (its
      params are then ignored).
  """

  vqgan: vqgan_lib.VQGAN
  discriminator: discriminator_lib.StyleGANDiscriminator
  optimizer: optax.GradientTransformation
  disc_optimizer: optax.GradientTransformation
  weights: LossWeights = LossWeights()
  perceptual: lpips_lib.LPIPS | None = None

  def __post_init__(self):
    if self.weights.dead_code_restart and self.vqgan.quantizer_type not in (
        "vq", "factorized"):
      raise ValueError(
          f"dead_code_restart works with the 'vq' and 'factorized' "
          f"quantizers, not {self.vqgan.quantizer_type!r}")

  def init(self, rng: jax.Array, images: jax.Array) -> TokenizerState:
    """A fresh state for image batches shaped like ``images [b, H, W, 3]``.

    Params (and their optimizer moments) are boxed with logical axis names
    for :func:`maskgit_jax.runtime.sharding.create_sharded`; ``nn.unbox`` the result
    to use it directly.
    """
    g_rng, d_rng = jax.random.split(rng)
    params = self.vqgan.init(g_rng, images)["params"]
    disc_params = self.discriminator.init(d_rng, images)["params"]
    k = self.vqgan.codebook_size
    return TokenizerState(
        step=jnp.zeros((), jnp.int32), params=params, disc_params=disc_params,
        opt_state=self.optimizer.init(params),
        disc_opt_state=self.disc_optimizer.init(disc_params),
        lecam_ema=jnp.zeros((2,), jnp.float32),
        code_usage=jnp.full((k,), 1.0 / k, jnp.float32))

  def _discriminate(self, disc_params, images):
    return self.discriminator.apply({"params": disc_params}, images)

  def phase(self, step: int) -> tuple[bool, bool]:
    """``(gan_active, r1_now)`` at a host-side step number: pass it to
    :meth:`train_step` as ``phase`` so that each phase compiles its own
    program (XLA:CPU runs the GAN branch under ``lax.cond`` several times
    slower than the same code outside it)."""
    w = self.weights
    return (step >= w.discriminator_start_step, step % w.r1_interval == 0)

  def train_step(self, state: TokenizerState, images: jax.Array,
                 rng: jax.Array, perceptual_params=None,
                 phase: tuple[bool, bool] | None = None
                 ) -> tuple[TokenizerState, dict[str, jax.Array]]:
    """One generator update, then one discriminator update, then the
    codebook's statistics (and restarts).

    Args:
      state: the current state.
      images: float ``[b, H, W, 3]`` in [0, 1].
      rng: key for this step (fold the step in before calling).
      perceptual_params: LPIPS params when ``perceptual`` is set.
      phase: :meth:`phase` of this step, static (one program per phase);
        None decides from ``state.step`` inside the program (``lax.cond``).

    Returns:
      ``(new_state, metrics)``; metrics are float32 scalars.
    """
    images = images.astype(jnp.float32)
    gan_now, r1_now = (None, None) if phase is None else (
        bool(p) for p in phase)
    params, opt_state, recon, aux, metrics = self.generator_update(
        state, images, gan_now, perceptual_params,
        jax.random.fold_in(rng, 1))
    disc_params, disc_opt_state, lecam_ema, d_metrics = (
        self.discriminator_update(state, images, jax.lax.stop_gradient(recon),
                                  gan_now, r1_now))
    params, code_usage, c_metrics = self.codebook_update(state, params, aux,
                                                         rng)
    metrics.update(d_metrics, **c_metrics)
    new_state = TokenizerState(
        step=state.step + 1, params=params, disc_params=disc_params,
        opt_state=opt_state, disc_opt_state=disc_opt_state,
        lecam_ema=lecam_ema, code_usage=code_usage)
    return new_state, {k: jnp.asarray(v, jnp.float32)
                       for k, v in metrics.items()}

  def _gan_active(self, state: TokenizerState) -> jax.Array:
    return state.step >= self.weights.discriminator_start_step

  def _reconstruction_terms(self, recon, images, perceptual_params):
    """``(weighted reconstruction + perceptual loss, their metrics)``."""
    w = self.weights
    rec = losses.reconstruction_loss(w.reconstruction)(predictions=recon,
                                                       targets=images)
    terms = {"reconstruction_loss": rec}
    total = w.reconstruction_weight * rec
    if self.perceptual is not None and w.perceptual_weight:
      perc = losses.perceptual_loss(
          distance_fn=lambda a, b: self.perceptual.apply(
              {"params": perceptual_params}, a, b),
          predictions=recon, targets=images)
      total += w.perceptual_weight * perc
      terms["perceptual_loss"] = perc
    return total, terms

  def generator_update(self, state: TokenizerState, images: jax.Array,
                       gan_now: bool | None, perceptual_params,
                       sample_rng: jax.Array | None = None):
    """The VQGAN's update: ``(params, opt_state, recon, aux, metrics)``.

    ``sample_rng``: the ``"sample"`` stream of a VAE's posterior (unused by
    the quantizers).

    Before the discriminator starts (``gan_now`` False, or decided by
    ``lax.cond`` when None) its forward and backward pass are skipped (half
    the step's cost at the demo size).
    """
    w = self.weights
    gen_gan_loss, _ = losses.gan_losses(w.gan_loss)

    def adversarial(recon):
      return gen_gan_loss(fake_logits=self._discriminate(state.disc_params,
                                                         recon))

    def generator_loss(params):
      rngs = {} if sample_rng is None else {"sample": sample_rng}
      (recon, aux), inter = self.vqgan.apply(
          {"params": params}, images, train=True, mutable=["intermediates"],
          rngs=rngs)
      total, metrics = self._reconstruction_terms(recon, images,
                                                  perceptual_params)
      total += aux["quantizer_loss"]

      def gan_terms(x):
        adv = adversarial(x)
        if not w.adaptive_adversarial_weight:
          return adv, jnp.ones((), jnp.float32)
        last_params = params["decoder"][vqgan_lib.last_layer_name(
            params["decoder"])]
        last_input = jax.lax.stop_gradient(
            inter["intermediates"]["decoder"]["last_layer_input"][0])

        def head(kernel):  # the last layer again, from its (frozen) input
          return vqgan_lib.last_layer({**last_params, "kernel": kernel},
                                      last_input, self.vqgan.dtype)

        weight = losses.adaptive_weight(
            reconstruction_grad=jax.grad(lambda k: self._reconstruction_terms(
                head(k), images, perceptual_params)[0])(last_params["kernel"]),
            adversarial_grad=jax.grad(lambda k: adversarial(head(k)))(
                last_params["kernel"]))
        return adv, weight

      adv, adaptive = _branch(
          gan_now, lambda: self._gan_active(state), gan_terms,
          lambda x: (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32)),
          recon)
      total += w.adversarial_weight * adaptive * adv
      metrics.update(
          generator_adversarial_loss=adv, adaptive_weight=adaptive,
          commitment_loss=aux["commitment_loss"],
          codebook_loss=aux["codebook_loss"],
          entropy_loss=aux["entropy_loss"], generator_loss=total)
      if "kl_loss" in aux:
        metrics["kl_loss"] = aux["kl_loss"]
      return total, (metrics, recon, aux)

    grads, (metrics, recon, aux) = jax.grad(generator_loss, has_aux=True)(
        state.params)
    updates, opt_state = self.optimizer.update(grads, state.opt_state,
                                               state.params)
    params = optax.apply_updates(state.params, updates)
    metrics["generator_grad_norm"] = optax.tree.norm(grads)
    return params, opt_state, recon, aux, metrics

  def discriminator_update(self, state: TokenizerState, images: jax.Array,
                           fake: jax.Array, gan_now: bool | None,
                           r1_now: bool | None):
    """The discriminator's update on real ``images`` and ``fake`` ones:
    ``(disc_params, disc_opt_state, lecam_ema, metrics)``, unchanged
    before ``discriminator_start_step``. The R1 penalty (weighted by
    ``r1_interval``) runs every ``r1_interval`` steps."""
    w = self.weights
    _, disc_gan_loss = losses.gan_losses(w.gan_loss)

    def discriminator_loss(disc_params):
      real_logits = self._discriminate(disc_params, images)
      fake_logits = self._discriminate(disc_params, fake)
      gan = disc_gan_loss(real_logits=real_logits, fake_logits=fake_logits)
      r1 = _branch(
          r1_now, lambda: state.step % w.r1_interval == 0,
          lambda x: w.r1_interval * losses.r1_penalty(
              discriminator_fn=lambda y: self._discriminate(disc_params, y),
              images=x),
          lambda x: jnp.zeros((), jnp.float32), images)
      lecam = losses.lecam_regularization(
          real_logits=real_logits, fake_logits=fake_logits,
          ema_real=state.lecam_ema[0], ema_fake=state.lecam_ema[1])
      total = gan + w.r1_cost * r1 + w.lecam_weight * lecam
      means = jnp.stack([real_logits.mean(), fake_logits.mean()])
      return total, ({"discriminator_loss": gan, "r1_penalty": r1,
                      "lecam_loss": lecam}, means)

    def update(_):
      d_grads, (d_metrics, means) = jax.grad(
          discriminator_loss, has_aux=True)(state.disc_params)
      d_updates, d_opt = self.disc_optimizer.update(
          d_grads, state.disc_opt_state, state.disc_params)
      ema = w.lecam_decay * state.lecam_ema + (1 - w.lecam_decay) * means
      return (optax.apply_updates(state.disc_params, d_updates), d_opt, ema,
              d_metrics)

    def skip(_):
      zero = jnp.zeros((), jnp.float32)
      return (state.disc_params, state.disc_opt_state, state.lecam_ema,
              {"discriminator_loss": zero, "r1_penalty": zero,
               "lecam_loss": zero})

    return _branch(gan_now, lambda: self._gan_active(state), update, skip,
                   None)

  def codebook_update(self, state: TokenizerState, params, aux,
                      rng: jax.Array):
    """Code usage statistics, the "vq_ema" codebook's averages and dead-code
    restarts: ``(params, code_usage, metrics)``; nothing for a VAE (no
    codes)."""
    if self.vqgan.continuous:
      return params, state.code_usage, {}
    w = self.weights
    k = self.vqgan.codebook_size
    share, usage, perplexity = code_statistics(aux["ids"], k)
    code_usage = w.usage_decay * state.code_usage + (1 - w.usage_decay) * share
    metrics = {"codebook_usage": usage, "codebook_perplexity": perplexity}
    if self.vqgan.quantizer_type == "vq_ema":
      params = _ema_codebook(params, aux, w.ema_decay)
    if w.dead_code_restart:
      params, code_usage, restarted = _restart_dead_codes(
          params, code_usage, aux["codebook_features"], rng,
          w.dead_code_threshold / k)
      metrics["restarted_codes"] = restarted
    return params, code_usage, metrics


def _branch(static: bool | None, predicate, on, off, operand):
  """``on``/``off`` chosen statically, or by ``lax.cond`` on ``predicate()``
  when ``static`` is None."""
  if static is not None:
    return on(operand) if static else off(operand)
  return jax.lax.cond(predicate(), on, off, operand)


def _ema_codebook(params, aux, decay: float):
  """Params with the quantizer's EMA statistics and codebook moved on."""
  q = params["quantizer"]
  cluster_size, embed_sum, codebook = quantizers.ema_codebook_update(
      q["ema_cluster_size"], q["ema_embed_sum"], aux["ids"],
      jax.lax.stop_gradient(aux["codebook_features"]), decay=decay)
  return {**params, "quantizer": {
      **q, "ema_cluster_size": cluster_size, "ema_embed_sum": embed_sum,
      "codebook": codebook.astype(q["codebook"].dtype)}}


def _restart_dead_codes(params, code_usage, features, rng, threshold):
  """Moves codes with running usage < threshold onto random batch features."""
  codebook = params["quantizer"]["codebook"]
  flat = features.reshape(-1, features.shape[-1]).astype(codebook.dtype)
  picks = jax.random.randint(rng, (codebook.shape[0],), 0, flat.shape[0])
  dead = code_usage < threshold
  new_codebook = jnp.where(dead[:, None], flat[picks], codebook)
  params = {**params, "quantizer": {**params["quantizer"],
                                    "codebook": new_codebook}}
  # Restarted codes get a uniform share so they have time to attract data.
  code_usage = jnp.where(dead, 1.0 / codebook.shape[0], code_usage)
  return params, code_usage, jnp.sum(dead)
