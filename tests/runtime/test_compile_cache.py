"""The persistent compilation cache: a second process loads what the first
compiled (checked through the cache directory and JAX's cache events, not
by timing); the tools switch it on; the environment can switch it off."""

import os
import pathlib
import subprocess
import sys

import jax
import pytest

from maskgit_jax.runtime import cli
from maskgit_jax.runtime import compile_cache

REPO = pathlib.Path(__file__).resolve().parents[2]

# Compiles a small transformer's forward pass with the cache on, then prints
# how many of its compilations were cache hits and misses.
_PROGRAM = """
import jax, jax.numpy as jnp
events = []
jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
from maskgit_jax.runtime import compile_cache
compile_cache.enable(min_compile_seconds=0.0)
from maskgit_jax.models import transformer
model = transformer.Transformer(codebook_size=16, num_classes=2,
    hidden_size=32, num_layers=1, num_heads=2, mlp_dim=64,
    max_position_embeddings=17)
ids = jnp.zeros((1, 17), jnp.int32)
params = jax.jit(model.init)(jax.random.PRNGKey(0), ids)
jax.block_until_ready(jax.jit(model.apply)(params, ids))
hits = events.count("/jax/compilation_cache/cache_hits")
misses = events.count("/jax/compilation_cache/cache_misses")
print(f"hits={hits} misses={misses}")
"""


def _run(cache: pathlib.Path) -> dict:
  env = dict(os.environ, MASKGIT_JAX_COMPILE_CACHE=str(cache))
  out = subprocess.run([sys.executable, "-c", _PROGRAM], env=env, cwd=REPO,
                       capture_output=True, text=True, check=True, timeout=300)
  line = out.stdout.strip().splitlines()[-1]
  return {k: int(v) for k, v in (p.split("=") for p in line.split())}


@pytest.mark.slow  # trains or compiles for several seconds
def test_second_process_loads_the_first_ones_programs(tmp_path):
  cache = tmp_path / "cache"
  first = _run(cache)
  written = sorted(p.name for p in cache.iterdir())
  assert first["misses"] >= 2 and first["hits"] == 0
  assert len(written) == first["misses"]  # one entry per compiled program
  second = _run(cache)
  assert second == {"hits": first["misses"], "misses": 0}
  assert sorted(p.name for p in cache.iterdir()) == written  # nothing new


@pytest.fixture
def restore_cache_config():
  before = (jax.config.jax_compilation_cache_dir,
            jax.config.jax_persistent_cache_min_compile_time_secs)
  yield
  jax.config.update("jax_compilation_cache_dir", before[0])
  jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])
  from jax.experimental.compilation_cache import compilation_cache  # pylint: disable=g-import-not-at-top
  compilation_cache.reset_cache()


def test_tools_switch_it_on_where_the_environment_says(
    tmp_path, monkeypatch, restore_cache_config):
  del restore_cache_config
  monkeypatch.setenv(compile_cache.ENV_VAR, str(tmp_path / "tools"))
  seen = []
  parser = cli.ArgumentParser()
  assert cli.run_args(
      lambda args: seen.append(jax.config.jax_compilation_cache_dir),
      parser, []) == 0
  assert seen == [str(tmp_path / "tools")]
  assert (tmp_path / "tools").is_dir()


@pytest.mark.parametrize("value", ["off", "0", "", "None"])
def test_the_environment_switches_it_off(value, monkeypatch,
                                         restore_cache_config):
  del restore_cache_config
  jax.config.update("jax_compilation_cache_dir", None)
  monkeypatch.setenv(compile_cache.ENV_VAR, value)
  assert compile_cache.enable() is None
  assert jax.config.jax_compilation_cache_dir is None


def test_default_dir_is_per_user(monkeypatch, tmp_path):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  assert compile_cache.default_dir() == tmp_path / "maskgit_jax" / "jax"
  monkeypatch.delenv("XDG_CACHE_HOME")
  assert compile_cache.default_dir().is_relative_to(pathlib.Path.home())


def test_exported_programs_are_keyed_by_every_package_source():
  """The digest that retires exported programs covers the whole package,
  every folder of it, not only the module's own."""
  package = REPO / "maskgit_jax"
  files = compile_cache.source_files()
  assert set(files) == {p.resolve() for p in package.rglob("*.py")}
  assert package.resolve() / "decoding" / "parallel_decode.py" in files


def test_negative_threshold_is_refused(restore_cache_config):
  del restore_cache_config
  with pytest.raises(ValueError, match="min_compile_seconds must be >= 0"):
    compile_cache.enable(pathlib.Path("unused"), min_compile_seconds=-1)


# A tiny random Generator samples two images; prints its tokens and how many
# programs it loaded from the program cache instead of tracing them.
_GENERATE = """
import json
import flax.linen as nn, jax, jax.numpy as jnp
from maskgit_jax.runtime import compile_cache
from maskgit_jax import sampling
from maskgit_jax.models import transformer, vqgan
compile_cache.enable(min_compile_seconds=0.0)
loaded = []
deserialize = jax.export.deserialize
jax.export.deserialize = lambda *a: loaded.append(1) or deserialize(*a)
model = transformer.Transformer(codebook_size=16, num_classes=2,
    hidden_size=32, num_layers=1, num_heads=2, mlp_dim=64,
    max_position_embeddings=17, initializer_range=0.5)
tok = vqgan.VQGAN(filters=32, num_res_blocks=1, channel_multipliers=(1, 1),
    embedding_dim=8, codebook_size=16)
params = nn.unbox(model.init(jax.random.PRNGKey(0),
                             jnp.zeros((1, 17), jnp.int32)))["params"]
tok_params = nn.unbox(tok.init(jax.random.PRNGKey(1),
                               jnp.zeros((1, 8, 8, 3))))["params"]
gen = sampling.Generator(model, params, tok, tok_params, image_size=8)
print(json.dumps({"tokens": gen.sample([0, 1, 1], seed=3, num_iter=4
                                       ).tokens.tolist(),
                  "loaded": len(loaded)}))
"""


def _generate(cache: str) -> dict:
  env = dict(os.environ, MASKGIT_JAX_COMPILE_CACHE=cache)
  out = subprocess.run([sys.executable, "-c", _GENERATE], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  import json  # pylint: disable=g-import-not-at-top
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_generator_programs_are_traced_once_per_machine(tmp_path):
  cache = tmp_path / "cache"
  first = _generate(str(cache))
  programs = sorted((cache / "exported").iterdir())
  assert first["loaded"] == 0 and programs  # traced, then written
  second = _generate(str(cache))
  assert second["loaded"] >= 1  # loaded instead of traced
  assert sorted((cache / "exported").iterdir()) == programs
  plain = _generate("off")  # jax.jit, no cache: the same samples
  assert first["tokens"] == second["tokens"] == plain["tokens"]
