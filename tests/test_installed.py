"""The installed package works outside the checkout, without TensorFlow.

A wheel is built from a copy of the sources and installed (not editable)
into a fresh virtual environment. Nothing is downloaded: the environment
borrows the test environment's third-party packages through a folder of
links that leaves out TensorFlow, TensorBoard and Keras (so for the
package, TensorFlow is simply not installed) and this checkout's own
``maskgit_jax``. Everything runs from a temporary directory, where neither
``maskgit_jax/`` nor ``configs/`` of the checkout can be imported.
"""

import json
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

from tests import train_helpers as th

pytestmark = pytest.mark.slow  # end to end: in make test, not test-fast

LEFT_OUT = re.compile(r"^(tensorflow|tensorboard|tf_keras|keras|maskgit_jax|"
                      r"__editable__|_maskgit_jax)", re.IGNORECASE)


def _run(args, cwd, timeout=600):
  env = th.subprocess_env(1)
  env.pop("PYTHONPATH")
  return subprocess.run(args, cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory) -> pathlib.Path:
  root = tmp_path_factory.mktemp("installed")
  source = root / "src"
  source.mkdir()
  for name in ("setup.py", "README.md"):
    shutil.copy(th.REPO / name, source / name)
  shutil.copytree(th.REPO / "maskgit_jax", source / "maskgit_jax",
                  ignore=shutil.ignore_patterns("__pycache__"))
  built = _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                "--no-build-isolation", "--wheel-dir", str(root / "dist"),
                str(source)], cwd=root)
  assert built.returncode == 0, built.stderr
  wheel, = (root / "dist").glob("maskgit_jax-*.whl")

  venv = root / "venv"
  subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                 check=True)
  python = venv / "bin" / "python"
  installed = _run([sys.executable, "-m", "pip", "--python", str(python),
                    "install", "--quiet", "--no-deps", "--no-index",
                    str(wheel)], cwd=root)
  assert installed.returncode == 0, installed.stderr

  borrowed = root / "borrowed"
  borrowed.mkdir()
  for entry in pathlib.Path(sysconfig.get_paths()["purelib"]).iterdir():
    if not LEFT_OUT.match(entry.name) and entry.suffix != ".pth":
      (borrowed / entry.name).symlink_to(entry)
  site = _run([str(python), "-c", "import sysconfig; "
               "print(sysconfig.get_paths()['purelib'])"], cwd=root)
  (pathlib.Path(site.stdout.strip()) / "borrowed.pth").write_text(
      f"{borrowed}\n")
  return python


def _check(result):
  assert result.returncode == 0, result.stdout + result.stderr
  return result


def test_the_package_is_the_installed_one_and_tensorflow_is_absent(
    venv_python, tmp_path):
  out = _check(_run([str(venv_python), "-c",
                     "import importlib.util as u, maskgit_jax; "
                     "print(maskgit_jax.__file__); "
                     "print(u.find_spec('tensorflow')); "
                     "print(u.find_spec('configs'))"], cwd=tmp_path))
  location, tensorflow, configs = out.stdout.split()
  assert not location.startswith(str(th.REPO))
  assert "site-packages" in location
  assert tensorflow == "None" and configs == "None"


def test_official_import_tool_runs(venv_python, tmp_path):
  out = _check(_run([str(venv_python), "-m", "maskgit_jax.runtime.official",
                     "--help"], cwd=tmp_path))
  assert "--tokenizer" in out.stdout


def _readme_decode_example() -> str:
  """The README's decoding snippet (between the decode-example markers)."""
  text = (th.REPO / "docs" / "sampling.md").read_text()
  block = text.split("<!-- decode-example -->")[1]
  return block.split("```python")[1].split("```")[0]


def test_readme_decode_example_runs(venv_python, tmp_path):
  script = tmp_path / "example.py"
  script.write_text(_readme_decode_example() +
                    "\nprint('tokens', tuple(image_tokens.shape))\n")
  out = _check(_run([str(venv_python), str(script)], cwd=tmp_path))
  assert "tokens (2, 64)" in out.stdout


def test_generator_restores_an_imported_checkpoint(venv_python, imported,
                                                   tmp_path):
  code = ("from maskgit_jax import sampling\n"
          f"gen = sampling.Generator.from_checkpoint({str(imported)!r})\n"
          "image = gen.generate([3], seed=0)\n"
          "print('image', image.shape, image.dtype)\n")
  out = _check(_run([str(venv_python), "-c", code], cwd=tmp_path))
  assert "image (1, 16, 16, 3) uint8" in out.stdout
  assert "Metadata file does not exist" not in out.stderr


def test_tiny_training_without_tensorflow(venv_python, tmp_path):
  """``train.py`` and a config file copied next to nothing else."""
  shutil.copy(th.REPO / "train.py", tmp_path / "train.py")
  shutil.copy(th.REPO / "configs" / "vqgan_animal_mnist.py",
              tmp_path / "tok.py")
  out = _check(_run([str(venv_python), "train.py", "--config=tok.py:tiny",
                     "--workdir=run"], cwd=tmp_path))
  text = out.stdout + out.stderr
  assert text.count("TensorBoard event files need TensorFlow") == 1, text
  assert "Traceback" not in text
  lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["step"] for line in lines] == [2, 4, 6]
  assert not list((tmp_path / "run").glob("events.out.tfevents*"))
  assert th.checkpoint_steps(tmp_path / "run") == [3, 6]


def test_the_class_names_ship_in_the_wheel(venv_python, tmp_path):
  out = _check(_run([str(venv_python), "-c",
                     "from maskgit_jax.data import imagenet_classes as c; "
                     "print(c.class_id('goldfish'), c.name(207))"],
                    cwd=tmp_path))
  assert out.stdout.split("\n")[0] == "1 golden retriever"
