"""Where a stage-2 checkpoint finds its tokenizer, whatever the directory."""

import pathlib

from maskgit_jax.runtime import restore


def _workdir(path: pathlib.Path) -> pathlib.Path:
  (path / "checkpoints").mkdir(parents=True)
  return path


def test_a_same_named_run_in_the_current_directory_does_not_win(
    tmp_path, monkeypatch):
  gen = _workdir(tmp_path / "copy" / "demo_out" / "maskgit")
  tok = _workdir(tmp_path / "copy" / "demo_out" / "tokenizer")
  _workdir(tmp_path / "demo_out" / "tokenizer")  # another run's tokenizer
  monkeypatch.chdir(tmp_path)
  assert restore.resolve_tokenizer("demo_out/tokenizer", gen) == tok


def test_tokenizer_path_resolves_from_any_directory(tmp_path, monkeypatch):
  runs = tmp_path / "demo_out"
  gen, tok = _workdir(runs / "maskgit"), _workdir(runs / "tokenizer")
  elsewhere = tmp_path / "notebooks"
  elsewhere.mkdir()
  # Saved relative to where training ran (the repository root).
  monkeypatch.chdir(tmp_path)
  assert restore.resolve_tokenizer("demo_out/tokenizer", gen).resolve() == (
      tok.resolve())
  monkeypatch.chdir(elsewhere)  # a notebook folder: the sibling is found
  assert restore.resolve_tokenizer("demo_out/tokenizer", gen) == tok
  inside = _workdir(gen / "tokenizer")  # imported checkpoints keep it inside
  assert restore.resolve_tokenizer("tokenizer", gen) == inside
  assert restore.resolve_tokenizer(str(tok), gen) == tok  # absolute
  moved = tmp_path / "old_place" / "tokenizer"  # saved absolute, then moved
  assert restore.resolve_tokenizer(str(moved), gen) == tok
  missing = restore.resolve_tokenizer("nowhere/tok", gen)
  assert missing == pathlib.Path("nowhere/tok")  # the loader names it
