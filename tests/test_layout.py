"""The package's shape: imports run one way, files stay one screenful-ish.

Layers, lowest first (DESIGN.md): algorithms -> models -> runtime ->
trainers | inference -> tools. A module may import its own layer or lower
ones; trainers and inference never import each other; nothing in the
package imports the checkout's top-level ``configs``.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "maskgit_jax"
MAX_LINES = 400

RANKS = {"algorithms": 0, "models": 1, "runtime": 2, "trainers": 3,
         "inference": 3, "tools": 4}

# Module (dotted, relative to maskgit_jax; a trailing ".*" covers a
# package) -> layer. A new module must be placed here.
LAYERS = {
    "tokens": "algorithms", "masking": "algorithms", "losses": "algorithms",
    "parallel_decode": "algorithms", "editing": "algorithms",
    "reveal_order": "algorithms", "logit_filters": "algorithms",
    "guidance": "algorithms", "remasking": "algorithms",
    "token_critic": "algorithms", "ar_decode": "algorithms",
    "mage_masking": "algorithms", "decode_options": "algorithms",
    "reveal_policies": "algorithms",
    "evaluation.metrics": "algorithms",
    "models.*": "models",
    "sharding": "runtime", "checkpointing": "runtime", "restore": "runtime",
    "presets.*": "runtime", "input_pipeline": "runtime", "imageio": "runtime",
    "batching": "runtime", "monitoring": "runtime", "animal_mnist": "runtime",
    "compile_cache": "runtime", "storage": "runtime",
    "imagenet_classes": "runtime", "tfds_data": "runtime",
    "trainers": "trainers", "trainers.tasks": "trainers",
    "trainers.loop": "trainers", "trainers.tokenizer_step": "trainers",
    "trainers.transformer_step": "trainers", "trainers.critic_step": "trainers",
    "trainers.ar_step": "trainers", "trainers.mage_step": "trainers",
    "trainers.warm_start": "trainers",
    "inference.*": "inference", "sampling": "inference",
    "evaluation": "algorithms",  # docstring only
    "evaluation.inception": "inference",
    "evaluation.classifier": "inference",
    "evaluation.linear_probe": "algorithms",
    "evaluation.representations": "inference",
    "evaluation.probe": "tools",
    "": "algorithms",  # the top-level package: empty
    "cli": "runtime", "official": "runtime", "export": "runtime",
    "pretokenize": "tools",
    "demo": "tools", "evaluation.__main__": "tools", "trainers.aot": "tools",
    "trainers.perceptual": "tools", "supervised": "runtime",
}


def _module_name(path: pathlib.Path) -> str:
  parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
  if parts[-1] == "__init__":
    parts.pop()
  return ".".join(parts)


def _layer(module: str) -> str | None:
  if module in LAYERS:
    return LAYERS[module]
  for pattern, layer in LAYERS.items():
    if pattern.endswith(".*") and (module == pattern[:-2] or
                                   module.startswith(pattern[:-1])):
      return layer
  return None


def _imports(path: pathlib.Path) -> set[str]:
  """Every module name imported anywhere in the file (functions included)."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      names.add(node.module)
      names.update(f"{node.module}.{alias.name}" for alias in node.names)
  return names


def _package_target(name: str) -> str | None:
  """``maskgit_jax.x.y`` -> the known module ``x.y`` (or its package)."""
  if name != "maskgit_jax" and not name.startswith("maskgit_jax."):
    return None
  parts = name.split(".")[1:]
  while parts:
    candidate = ".".join(parts)
    if (PACKAGE.joinpath(*parts).with_suffix(".py").exists() or
        PACKAGE.joinpath(*parts, "__init__.py").exists()):
      return candidate
    parts.pop()  # an attribute (a class or function), not a module
  return ""


FILES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
  missing = [_module_name(f) for f in FILES if _layer(_module_name(f)) is None]
  assert not missing, f"place these modules in LAYERS: {missing}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: _module_name(p) or "init")
def test_imports_run_one_way(path):
  source = _module_name(path)
  layer = _layer(source)
  wrong = []
  for name in sorted(_imports(path)):
    assert not (name == "configs" or name.startswith("configs.")), (
        f"{source} imports the checkout's configs ({name}); use "
        "maskgit_jax.presets")
    target = _package_target(name)
    if target is None or target == source:
      continue
    target_layer = _layer(target)
    if RANKS[target_layer] > RANKS[layer] or (
        RANKS[target_layer] == RANKS[layer] and target_layer != layer):
      wrong.append(f"{name} ({target_layer})")
  assert not wrong, f"{source} ({layer}) imports upward or sideways: {wrong}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: _module_name(p) or "init")
def test_files_fit_a_screenful_or_so(path):
  lines = len(path.read_text().splitlines())
  assert lines <= MAX_LINES, f"{path.name} has {lines} lines"


def test_the_checker_catches_a_wrong_arrow(tmp_path):
  """The rule itself: an algorithm importing a trainer is refused."""
  assert RANKS[_layer("trainers.loop")] > RANKS[_layer("masking")]
  assert _layer("inference.generator") != _layer("trainers.loop")
  assert _package_target("maskgit_jax.trainers.loop.check_finite") == (
      "trainers.loop")
  fake = tmp_path / "m.py"
  fake.write_text("def f():\n  from maskgit_jax.trainers import loop\n")
  assert "maskgit_jax.trainers.loop" in _imports(fake)
