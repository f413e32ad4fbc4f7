"""Where a stage-2 checkpoint finds its tokenizer, whatever the directory."""

import pathlib

from maskgit_jax import restore


def _workdir(path: pathlib.Path) -> pathlib.Path:
  (path / "checkpoints").mkdir(parents=True)
  return path


def test_tokenizer_path_resolves_from_any_directory(tmp_path, monkeypatch):
  runs = tmp_path / "demo_out"
  gen, tok = _workdir(runs / "maskgit"), _workdir(runs / "tokenizer")
  elsewhere = tmp_path / "notebooks"
  elsewhere.mkdir()
  # Saved relative to where training ran (the repository root).
  monkeypatch.chdir(tmp_path)
  assert restore.resolve_tokenizer("demo_out/tokenizer", gen) == pathlib.Path(
      "demo_out/tokenizer")
  monkeypatch.chdir(elsewhere)  # a notebook folder: the sibling is found
  assert restore.resolve_tokenizer("demo_out/tokenizer", gen) == tok
  inside = _workdir(gen / "tokenizer")  # imported checkpoints keep it inside
  assert restore.resolve_tokenizer("tokenizer", gen) == inside
  assert restore.resolve_tokenizer(str(tok), gen) == tok  # absolute
  missing = restore.resolve_tokenizer("nowhere/tok", gen)
  assert missing == pathlib.Path("nowhere/tok")  # the loader names it
