"""Every tool follows one command-line convention (maskgit_jax/runtime/cli.py).

A user's mistake: one ``error:`` line on stderr, exit 2, nothing written.
A bug: a traceback, exit 1. A normal run: no TensorFlow, oneDNN, XLA or
absl start-up lines and no warning about the project's own checkpoints.
"""

import importlib
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tests import train_helpers as th

BANNERS = ("oneDNN", "absl::InitializeLog", "cpu_feature_guard",
           "Logging before flag parsing",
           "Unable to initialize backend", "Metadata file does not exist",
           "tensorflow", "WARNING")


def _env():
  env = th.subprocess_env(1)
  env.pop("TF_CPP_MIN_LOG_LEVEL")  # as a user's shell: nothing preset
  return env


def _run(args, cwd):
  return subprocess.run(args, cwd=cwd, env=_env(), capture_output=True,
                        text=True, timeout=600, check=False)


_tool = th.tool_command  # the command line that starts a tool


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_tokenizer):
  """The tiny stage 2 trained through train.py on the shared tiny
  tokenizer, and its output."""
  root = tmp_path_factory.mktemp("cli_run")
  (root / "tok").symlink_to(tiny_tokenizer)
  result = _run(_tool("train.py") + [
      f"--config={th.REPO / 'configs' / 'maskgit_animal_mnist.py'}:tiny",
      f"--workdir={root / 'gen'}",
      f"--config.tokenizer_checkpoint={root / 'tok'}"], cwd=root)
  assert result.returncode == 0, result.stderr
  return root, result.stdout + result.stderr


@pytest.mark.slow  # end to end: in make test, not test-fast
def test_training_sampling_and_tools_print_no_library_banners(trained):
  root, output = trained
  result = _run(_tool("sample.py") + [f"--checkpoint={root / 'gen'}",
                                      "--labels=1,2",
                                      "--precision=bfloat16_matmul",
                                      f"--output={root / 'grid.png'}"],
                cwd=root)
  assert result.returncode == 0, result.stderr
  tokens = _run(_tool("maskgit_jax.tools.pretokenize") + [
      f"--tokenizer={root / 'tok'}", "--data=animal_mnist", "--split=test",
      "--image_size=16", f"--out={root / 'tokens.npz'}"], cwd=root)
  assert tokens.returncode == 0, tokens.stderr
  text = (output + result.stdout + result.stderr + tokens.stdout +
          tokens.stderr)
  found = [b for b in BANNERS if b.lower() in text.lower()]
  assert not found, text
  assert "step 6/6" in output  # our own progress lines are kept
  assert (root / "grid.png").exists()


def _cases(root: pathlib.Path):
  """``(tool, args, expected message)`` of the absl tools (one set of
  global flags per process: each case is a subprocess) with ``root``
  holding inputs."""
  tok = th.REPO / "configs" / "vqgan_animal_mnist.py"
  gen = root / "gen"
  png = root / "in.png"
  return [
      ("train.py", ["--config=missing.py", "--workdir=out"],
       "config file 'missing.py' could not be loaded"),
      ("train.py", [f"--config={tok}:tiny", "--workdir=out",
                    "--config.no_such_field=1"], "no_such_field"),
      ("train.py", [f"--config={tok}:huge", "--workdir=out"],
       "unknown variant 'huge'"),
      ("train.py", [f"--config={tok}:tiny", "--workdir=out",
                    "--config.batch_size=many"], "--config.batch_size=many"),
      ("train.py", [
          f"--config={th.REPO / 'configs' / 'maskgit_animal_mnist.py'}:tiny",
          "--workdir=out", "--config.tokenizer_checkpoint=nowhere"],
       "tokenizer checkpoint nowhere not found"),
      ("sample.py", ["--checkpoint=nowhere", "--labels=1", "--output=out.png"],
       "checkpoint nowhere not found"),
      ("sample.py", [f"--checkpoint={gen}", "--labels=1,12",
                     "--output=out.png"], "label 12 is out of range"),
      ("sample.py", [f"--checkpoint={gen}", "--task=inpaint",
                     f"--image={root / 'bad.png'}", f"--mask={png}",
                     "--label=1", "--output=out.png"], "not a readable image"),
      ("sample.py", [f"--checkpoint={gen}", "--labels=1", "--sampler=fast",
                     "--output=out.png"], "<gumbel|cdf>"),
      ("maskgit_jax.tools.aot", ["--config=missing.py"],
       "config file 'missing.py' could not be loaded"),
      ("maskgit_jax.tools.aot", [f"--config={tok}:tiny",
                                    "--config.nope=1"], "nope"),
  ]


CASE_IDS = [f"{tool}:{i}" for i, (tool, _, _) in
            enumerate(_cases(pathlib.Path("/")))]


@pytest.mark.slow  # subprocesses
@pytest.mark.parametrize("index", range(len(CASE_IDS)), ids=CASE_IDS)
def test_user_mistakes_are_one_line_exit_2_nothing_written(trained, tmp_path,
                                                          index):
  root, _ = trained
  from maskgit_jax.data import imageio  # pylint: disable=g-import-not-at-top
  if not (root / "in.png").exists():
    imageio.write_image(root / "in.png", np.zeros((16, 16, 3), np.uint8))
    (root / "bad.png").write_bytes(b"not an image")
  tool, args, message = _cases(root)[index]
  result = _run(_tool(tool) + args, cwd=tmp_path)
  assert result.returncode == 2, result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
  assert message in lines[0], lines[0]
  assert not os.listdir(tmp_path), os.listdir(tmp_path)


# The argparse tools: ``main(argv)`` in this process.
IN_PROCESS = [
    ("maskgit_jax.runtime.official", ["--tokenizer=nothing.msgpack",
                                      "--transformer=nothing.msgpack",
                                      "--out=out"], "does not exist"),
    ("maskgit_jax.runtime.official", ["--tokenizer=a"], "required"),
    ("maskgit_jax.tools.pretokenize", ["--tokenizer=nowhere",
                                       "--data=animal_mnist",
                                       "--image_size=16", "--out=out.npz"],
     "tokenizer checkpoint nowhere not found"),
    ("maskgit_jax.tools.pretokenize", ["--tokenizer=a", "--data=animal_mnist",
                                       "--image_size=big", "--out=out.npz"],
     "invalid int value: 'big'"),
    ("maskgit_jax.tools.demo", ["--out=out", "--variant=huge"],
     "invalid choice"),
    ("maskgit_jax.evaluation.__main__", ["--samples=none.npz",
                                         "--reference={png}",
                                         "--classifier=none.npz"],
     "does not exist"),
    ("maskgit_jax.tools.export", ["--workdir=nowhere", "--out=out"],
     "nowhere"),
]


@pytest.mark.parametrize(
    "tool,args,message", IN_PROCESS,
    ids=[f"{t.split('.')[-1]}:{i}" for i, (t, _, _) in enumerate(IN_PROCESS)])
def test_argparse_tool_mistakes_in_process(tool, args, message, tmp_path,
                                           tmp_path_factory, monkeypatch,
                                           capsys):
  """The same convention, through the tools' ``main(argv)``."""
  from maskgit_jax.data import imageio  # pylint: disable=g-import-not-at-top
  png = tmp_path_factory.mktemp("inputs") / "in.png"
  imageio.write_image(png, np.zeros((16, 16, 3), np.uint8))
  monkeypatch.chdir(tmp_path)
  main = importlib.import_module(tool).main
  try:
    status = main([a.format(png=png) for a in args])
  except SystemExit as e:  # argparse's own refusals exit right away
    status = e.code
  assert status == 2
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), lines
  assert message in lines[0], lines[0]
  assert not os.listdir(tmp_path), os.listdir(tmp_path)


@pytest.mark.slow  # subprocesses
@pytest.mark.parametrize("tool", ["train.py", "maskgit_jax.tools.pretokenize"])
def test_an_internal_key_error_keeps_its_traceback(tmp_path, tool):
  """A bug inside the library is not dressed up as a user mistake."""
  if tool == "train.py":
    code = ("import runpy, sys\n"
            "from maskgit_jax.trainers import loop\n"
            "def broken(*args): return {}['internal']\n"
            "loop.train_and_evaluate = broken\n"
            f"sys.argv = ['train.py', '--config={th.REPO}/configs/"
            "vqgan_animal_mnist.py:tiny', '--workdir=w']\n"
            f"runpy.run_path({str(th.REPO / 'train.py')!r}, "
            "run_name='__main__')\n")
  else:
    code = ("import sys\n"
            "from maskgit_jax.tools import pretokenize\n"
            "def broken(*args, **kwargs): return {}['internal']\n"
            "pretokenize.pretokenize = broken\n"
            "sys.exit(pretokenize.main(['--tokenizer=t', '--data=d', "
            "'--image_size=16', '--out=o.npz']))\n")
  result = _run([sys.executable, "-c", code], cwd=tmp_path)
  assert result.returncode == 1
  assert "Traceback" in result.stderr and "KeyError: 'internal'" in (
      result.stderr)


def test_info_logs_of_every_package_folder_reach_the_terminal():
  """The filter keeps INFO lines of any module of the package (the loop's
  "resumed from step"), and drops other libraries' INFO chatter."""
  import logging  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import cli  # pylint: disable=g-import-not-at-top
  from maskgit_jax.trainers import loop  # pylint: disable=g-import-not-at-top

  def record(path, level=logging.INFO):
    return logging.LogRecord("x", level, str(path), 1, "m", None, None)

  keep = cli._OwnLogsOnly()  # pylint: disable=protected-access
  assert keep.filter(record(loop.__file__))
  assert keep.filter(record(th.REPO / "train.py"))
  assert not keep.filter(record(logging.__file__))
  assert keep.filter(record(logging.__file__, logging.WARNING))
