"""Config builders shared by the training-system tests."""

import pathlib

from configs import maskgit_animal_mnist
from configs import maskgit_imagenet
from configs import vqgan_animal_mnist
from configs import vqgan_imagenet

REPO = pathlib.Path(__file__).resolve().parents[1]


def tokenizer_config(dataset: str = "animal_mnist", **overrides):
  if dataset == "animal_mnist":
    config = vqgan_animal_mnist.get_config("tiny")
  else:
    config = vqgan_imagenet.get_config("tiny")
    config.data.name = dataset
  config.update(overrides)
  return config


def transformer_config(tokenizer_workdir, dataset: str = "animal_mnist",
                       **overrides):
  if dataset == "animal_mnist":
    config = maskgit_animal_mnist.get_config("tiny")
  else:
    config = maskgit_imagenet.get_config("tiny")
    config.data.name = dataset
  config.tokenizer_checkpoint = str(tokenizer_workdir)
  config.update(overrides)
  return config


def checkpoint_steps(workdir) -> list[int]:
  folder = pathlib.Path(workdir) / "checkpoints"
  return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())
