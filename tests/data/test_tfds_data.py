"""TFDS on a slice: ArrayRecord builds, one process prepares, a TFRecord
build refused in one line (the tiny ``tiny_shapes`` dataset)."""

import json
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from maskgit_jax.data import tfds_data
from tests import tiny_tfds
from tests import train_helpers as th


def test_the_documented_prepare_command_builds_array_record(tmp_path, capsys):
  data_dir = tmp_path / "tensorflow_datasets"
  # docs/training.md's command, with the tiny dataset's name.
  assert tfds_data.main(["--name=tiny_shapes",
                         f"--data_dir={data_dir}"]) == 0
  assert "prepared tiny_shapes" in capsys.readouterr().out
  builder = tfds.builder("tiny_shapes", data_dir=data_dir)
  assert builder.info.file_format.value == "array_record"
  source = tfds_data.TfdsSource("tiny_shapes", "train", str(data_dir))
  assert not source.prepared_here and len(source) == tiny_tfds.NUM_TRAIN
  images, labels = zip(*(source[i] for i in range(len(source))))
  assert sorted(int(im[0, 0, 0]) for im in images) == [
      20 * i for i in range(tiny_tfds.NUM_TRAIN)]
  for image, label in zip(images, labels):
    assert image.shape == (8, 8, 3) and label == (image[0, 0, 0] // 20) % 3
  assert source.num_classes == 3
  assert tfds_data.main(["--name=tiny_shapes",
                         f"--data_dir={data_dir}"]) == 0
  assert "already prepared" in capsys.readouterr().out


def test_a_tfrecord_build_is_refused_in_one_line(tmp_path):
  tfds.builder("tiny_shapes", data_dir=tmp_path).download_and_prepare(
      file_format="tfrecord")
  with pytest.raises(ValueError, match=r"holds \['tfrecord'\] files") as e:
    tfds_data.TfdsSource("tiny_shapes", "train", str(tmp_path))
  assert "\n" not in str(e.value)
  assert "python -m maskgit_jax.data.tfds_data --name=tiny_shapes" in str(e.value)


def test_an_unknown_split_or_dataset_names_itself(tmp_path):
  with pytest.raises(FileNotFoundError, match="split 'validation'.*'test'"):
    tfds_data.TfdsSource("tiny_shapes", "validation", str(tmp_path))
  with pytest.raises(FileNotFoundError, match="'no_such_xyz' is neither"):
    tfds_data.TfdsSource("no_such_xyz", "train", str(tmp_path))


def test_an_object_store_data_dir_is_refused_before_any_io():
  for call in (lambda: tfds_data.TfdsSource("tiny_shapes", "train",
                                            "gs://bkt/tfds"),
               lambda: tfds_data.prepare("tiny_shapes", "gs://bkt/tfds")):
    with pytest.raises(ValueError, match="Cloud Storage FUSE") as e:
      call()
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_on_two_processes_only_process_zero_prepares(tmp_path):
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  data_dir = tmp_path / "shared_tfds"
  procs = []
  for i in range(2):
    log = open(tmp_path / f"worker{i}.log", "w")  # pylint: disable=consider-using-with
    procs.append((subprocess.Popen(
        [sys.executable, "-m", "tests.tiny_tfds", str(data_dir),
         str(tmp_path / f"report{i}.json")], cwd=th.REPO,
        env=th.subprocess_env(1, MASKGIT_COORDINATOR=f"127.0.0.1:{port}",
                              MASKGIT_NUM_PROCESSES=2, MASKGIT_PROCESS_ID=i),
        stdout=log, stderr=subprocess.STDOUT), log))
  for proc, log in procs:
    proc.wait(timeout=300)
    log.close()
    assert proc.returncode == 0, (tmp_path / "worker0.log").read_text()[-3000:]
  reports = [json.loads((tmp_path / f"report{i}.json").read_text())
             for i in range(2)]
  assert [r["prepared_here"] for r in reports] == [True, False]
  assert reports[0]["labels"] == reports[1]["labels"]
  assert sorted(reports[0]["labels"]) == sorted(
      np.arange(tiny_tfds.NUM_TRAIN) % 3)
