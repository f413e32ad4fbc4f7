"""The package's shape: imports run one way, files stay one screenful-ish.

Layers, lowest first (DESIGN.md), each a set of folders: algorithms
(decoding/, objectives/) -> models/ -> runtime (data/, runtime/, presets/)
-> trainers/ | inference/ | evaluation/ -> tools/. A module may import its
own layer or lower ones; the three middle layers of rank 3 never import
each other; nothing in the package imports the checkout's top-level
``configs``.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "maskgit_jax"
MAX_LINES = 400

RANKS = {"algorithms": 0, "models": 1, "runtime": 2, "trainers": 3,
         "inference": 3, "evaluation": 3, "tools": 4}

# Folder of maskgit_jax -> layer. A new folder must be placed here; a module
# takes its folder's layer.
FOLDERS = {
    "decoding": "algorithms", "objectives": "algorithms",
    "models": "models",
    "data": "runtime", "runtime": "runtime", "presets": "runtime",
    "trainers": "trainers", "inference": "inference",
    "evaluation": "evaluation", "tools": "tools",
}
# The few modules at the top: the package, and two public faces.
TOP = {"": "algorithms", "parallel_decode": "algorithms",
       "sampling": "inference"}


def _module_name(path: pathlib.Path) -> str:
  parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
  if parts[-1] == "__init__":
    parts.pop()
  return ".".join(parts)


def _layer(module: str) -> str | None:
  if "." not in module:
    return TOP.get(module, FOLDERS.get(module))
  return FOLDERS.get(module.split(".")[0])


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
  assert not missing, f"place these modules in FOLDERS (or TOP): {missing}"


def _wrong_arrows(source: str, path: pathlib.Path) -> list[str]:
  """The imports of ``path`` (module ``source``) against the layers."""
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
  return wrong


@pytest.mark.parametrize("path", FILES, ids=lambda p: _module_name(p) or "init")
def test_imports_run_one_way(path):
  source = _module_name(path)
  wrong = _wrong_arrows(source, path)
  assert not wrong, (f"{source} ({_layer(source)}) imports upward or "
                     f"sideways: {wrong}")


def _import_graph(files) -> dict[str, set[str]]:
  """Module -> the package modules it imports (anywhere in the file,
  ``TYPE_CHECKING`` blocks included; ``from pkg import sub`` is an edge to
  ``pkg.sub``, not to ``pkg``'s ``__init__``)."""
  graph = {}
  for path in files:
    source = _module_name(path)
    targets = {_package_target(n) for n in _imports(path)}
    targets = {t for t in targets if t is not None and t != source}
    # A package imported only for a submodule is not an edge of its own.
    graph[source] = {t for t in targets
                     if not any(o.startswith(t + ".") if t else o
                                for o in targets if o != t)}
  return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components with more than one module."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for nxt in sorted(graph.get(node, ())):
      if nxt not in index:
        visit(nxt)
        low[node] = min(low[node], low[nxt])
      elif nxt in on_stack:
        low[node] = min(low[node], index[nxt])
    if low[node] == index[node]:
      component = []
      while True:
        top = stack.pop()
        on_stack.discard(top)
        component.append(top)
        if top == node:
          break
      if len(component) > 1:
        found.append(sorted(component))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return found


def test_no_import_cycles_inside_the_package():
  cycles = _cycles(_import_graph(FILES))
  assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: _module_name(p) or "init")
def test_files_fit_a_screenful_or_so(path):
  lines = len(path.read_text().splitlines())
  assert lines <= MAX_LINES, f"{path.name} has {lines} lines"


def test_the_checker_catches_a_wrong_arrow(tmp_path):
  """The rule itself: an algorithm importing a trainer is refused."""
  assert RANKS[_layer("trainers.loop")] > RANKS[_layer("objectives.mvtm")]
  assert _layer("inference.generator") != _layer("trainers.loop")
  assert _package_target("maskgit_jax.trainers.loop.check_finite") == (
      "trainers.loop")
  fake = tmp_path / "m.py"
  fake.write_text("def f():\n  from maskgit_jax.trainers import loop\n")
  assert "maskgit_jax.trainers.loop" in _imports(fake)
  assert "maskgit_jax.trainers.loop (trainers)" in _wrong_arrows(
      "objectives.mvtm", fake)
  assert _wrong_arrows("trainers.tasks", fake) == []
  assert "maskgit_jax.trainers.loop (trainers)" in _wrong_arrows(
      "evaluation.metrics", fake)  # sideways at rank 3
  assert _layer("nowhere.module") is None


def test_the_cycle_finder_finds_cycles():
  graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
  assert _cycles(graph) == [["a", "b", "c"]]
  assert _cycles({"a": {"b"}, "b": set()}) == []
