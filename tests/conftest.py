"""Shared test setup: 8 fake CPU devices and the official parity fixtures."""

import os

# Must happen before jax is imported anywhere: 8 fake CPU devices so that
# sharding code runs on meshes of several devices; LLVM's O0 and XLA's older
# elemental emitter for fusions: the tests' programs are small, so compiling
# them costs more than running them (measured in docs/layout.md, Tests). A
# test whose program runs thousands of steps compiles that program with
# helpers.RUNTIME_OPTIONS. The tools the tests start inherit these flags
# (train_helpers.subprocess_env sets only its own device count).
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") +
    " --xla_force_host_platform_device_count=8"
    " --xla_backend_optimization_level=0"
    " --xla_cpu_use_fusion_emitters=false").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The tools the tests start keep compiled programs in one cache of this test
# run (shared by the xdist workers, which inherit it), not the user's.
if "MASKGIT_JAX_COMPILE_CACHE" not in os.environ:
  import tempfile  # pylint: disable=g-import-not-at-top
  os.environ["MASKGIT_JAX_COMPILE_CACHE"] = tempfile.mkdtemp(
      prefix="maskgit_jax_test_cache_")
  _OWN_CACHE = os.environ["MASKGIT_JAX_COMPILE_CACHE"]
else:
  _OWN_CACHE = None

import json  # pylint: disable=g-import-not-at-top
import pathlib
import time

import flax
import jax
import numpy as np
import pytest

from maskgit_jax.runtime import compile_cache

# The tests themselves use that cache too, for every program: the same tiny
# models are compiled by many tests and by both xdist workers, and a program
# loaded from the cache is the one XLA compiled (a tiny tokenizer's 6 steps:
# 27 s cold, 10 s warm). MASKGIT_JAX_COMPILE_CACHE=off switches it off.
compile_cache.enable(min_compile_seconds=0.0)

REPO = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = pathlib.Path(os.environ.get(
    "MASKGIT_PARITY_FIXTURES",
    REPO.parent / "shared" / "fixtures" / "official_parity"))


class Parity:
  """Loads the official parity fixtures (see their README for conventions)."""

  def __init__(self, root: pathlib.Path):
    self.root = root
    self.io = dict(np.load(root / "io.npz"))
    self.config = json.loads((root / "config.json").read_text())

  def params(self, which: str) -> dict:
    """The ``{'params': ...}`` tree of 'transformer' or 'tokenizer'."""
    flat = np.load(self.root / f"{which}_params.npz")
    return flax.traverse_util.unflatten_dict(
        {tuple(k.split("/")): np.asarray(v) for k, v in flat.items()})

  def json(self, name: str) -> dict:
    return json.loads((self.root / name).read_text())


@pytest.fixture(scope="session")
def parity() -> Parity:
  if not (FIXTURES / "io.npz").exists():
    message = f"official parity fixtures not found at {FIXTURES}"
    if os.environ.get("CI"):
      pytest.fail(message)  # CI always has shared/ beside the clone.
    pytest.skip(message)
  return Parity(FIXTURES)


@pytest.fixture
def legacy_threefry():
  """Random bits as JAX < 0.5 drew them (the fixtures' sampled runs)."""
  previous = jax.config.jax_threefry_partitionable
  jax.config.update("jax_threefry_partitionable", False)
  try:
    yield
  finally:
    jax.config.update("jax_threefry_partitionable", previous)


@pytest.fixture(scope="session")
def imported(parity, tmp_path_factory) -> pathlib.Path:
  """The fixture trees written as official msgpack files, then imported."""
  import flax.serialization  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import official  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("official")
  for name in ("tokenizer", "transformer"):
    (root / f"{name}.msgpack").write_bytes(
        flax.serialization.msgpack_serialize(parity.params(name)))
  assert official.main([f"--tokenizer={root / 'tokenizer.msgpack'}",
                        f"--transformer={root / 'transformer.msgpack'}",
                        f"--out={root / 'out'}"]) == 0
  return root / "out"


def _once_per_run(tmp_path_factory, worker_id: str, name: str, make):
  """``make(folder)`` run once per test run, shared by the xdist workers:
  the first worker to take the lock makes ``name`` in the run's common
  temporary folder, the others wait and read it (a crashed maker leaves no
  ``done`` marker, so the next one makes it again). ``make`` returns what
  the fixture gives, as JSON-serialisable data."""
  import fcntl  # pylint: disable=g-import-not-at-top
  if worker_id == "master":  # not under xdist
    return make(tmp_path_factory.mktemp(name))
  root = tmp_path_factory.getbasetemp().parent  # common to the workers
  folder, done = root / name, root / f"{name}.done.json"
  with open(root / f"{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not done.exists():
      if folder.exists():
        import shutil  # pylint: disable=g-import-not-at-top
        shutil.rmtree(folder)
      folder.mkdir()
      done.write_text(json.dumps(make(folder)))
  return json.loads(done.read_text())


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory, worker_id) -> pathlib.Path:
  """The tiny animal-MNIST tokenizer (``train_helpers.tokenizer_config()``,
  6 steps), trained once per test run and shared: read it, never train
  into it."""
  def make(workdir):
    from maskgit_jax.trainers import loop  # pylint: disable=g-import-not-at-top
    from tests import train_helpers  # pylint: disable=g-import-not-at-top
    metrics = loop.train_and_evaluate(train_helpers.tokenizer_config(),
                                      workdir)
    assert np.isfinite(metrics["reconstruction_loss"])
    return str(workdir)
  return pathlib.Path(_once_per_run(tmp_path_factory, worker_id,
                                    "tiny_tokenizer", make))


@pytest.fixture(scope="session")
def tiny_vae(tmp_path_factory, worker_id) -> tuple[pathlib.Path, pathlib.Path]:
  """``(workdir, latents)``: the tiny VAE (``configs/vae_animal_mnist.py``
  tiny, 3 steps, trained by ``train.py``) and its cached latents of the test
  split, made once per test run and shared: read them, never train into
  them."""
  def make(root):
    from maskgit_jax.tools import pretokenize  # pylint: disable=g-import-not-at-top
    from tests import train_helpers  # pylint: disable=g-import-not-at-top
    done = train_helpers.run_tool(
        "train.py", "--config=configs/vae_animal_mnist.py:tiny",
        f"--workdir={root / 'vae'}", "--config.num_train_steps=3",
        "--config.checkpoint_every_steps=3", "--config.preview_every_steps=0")
    assert done.returncode == 0, done.stderr[-3000:]
    latents = pretokenize.pretokenize(str(root / "vae"), "animal_mnist",
                                      "test", 16, str(root / "latents.npz"),
                                      progress=lambda _: None)
    return [str(root / "vae"), str(latents)]
  workdir, latents = _once_per_run(tmp_path_factory, worker_id, "tiny_vae",
                                   make)
  return pathlib.Path(workdir), pathlib.Path(latents)


def pytest_configure(config):
  config.addinivalue_line(
      "markers", "slow: an end-to-end test (subprocesses, several processes,"
      " whole runs); make test runs it, make test-fast leaves it out")
  config.addinivalue_line(
      "markers", "study: a study script end to end on tiny runs; make "
      "test-studies (and CI) runs it, make test leaves it out")


def pytest_unconfigure(config):
  del config
  if _OWN_CACHE and not os.environ.get("PYTEST_XDIST_WORKER"):
    import shutil  # pylint: disable=g-import-not-at-top
    shutil.rmtree(_OWN_CACHE, ignore_errors=True)


# CPU seconds per test phase (this process's threads and finished child
# processes), written when MASKGIT_TEST_CPU_TIMES names a file: a ranking of
# the suite's costs that holds whatever else the machine runs (wall time
# does not). One line per phase: seconds, phase, test id.
_CPU_TIMES = os.environ.get("MASKGIT_TEST_CPU_TIMES")


def _cpu_seconds() -> float:
  import resource  # pylint: disable=g-import-not-at-top
  children = resource.getrusage(resource.RUSAGE_CHILDREN)
  return time.process_time() + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
  yield from _timed(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
  yield from _timed(item, "call")


def _timed(item, phase):
  if not _CPU_TIMES:
    yield
    return
  start = _cpu_seconds()
  yield
  worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
  with open(f"{_CPU_TIMES}.{worker}", "a", encoding="utf-8") as f:
    f.write(f"{_cpu_seconds() - start:.2f} {phase} {item.nodeid}\n")
