"""Coordinate search over sampling settings, with no optimum left at an edge.

A grid product over seven decode axes is thousands of decodes; a study
sweeps one axis at a time from a starting point, keeps the best value, and
repeats the sweep until a whole round changes nothing. When the best value
of an axis is at the end of its list and the axis can grow
(:class:`Axis.grow`), the next value is added and tried, so that a pick at
an edge means the edge is a true bound (guidance 0, top-p 1, the largest T
the study allows), never where the list happened to stop.

Scores are lower-is-better (a development Frechet distance). ``evaluate``
is called at most once per distinct setting (results are memoised).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Callable, Sequence


@dataclasses.dataclass(frozen=True)
class Axis:
  """One setting's candidate values, in order.

  Attributes:
    name: the option's keyword.
    values: the candidates, ordered (numbers ascending).
    grow: ``(value, upward) -> next value or None``: the value beyond an
      end, or None where the end is a bound.
  """

  name: str
  values: tuple
  grow: Callable[[Any, bool], Any] | None = None


def scaled(factor: float, lowest: float | None = None,
           highest: float | None = None) -> Callable[[Any, bool], Any]:
  """A ``grow`` that multiplies (up) or divides (down) by ``factor``,
  stopping at ``lowest`` / ``highest``."""
  def grow(value, upward):
    nxt = value * factor if upward else value / factor
    if isinstance(value, int) and not isinstance(value, bool):
      nxt = int(round(nxt))
    if (highest is not None and nxt > highest) or (
        lowest is not None and nxt < lowest) or nxt == value:
      return None
    return nxt
  return grow


@dataclasses.dataclass
class Search:
  """The result: ``best`` settings, every ``tried`` row (settings and
  score, in order), and ``edges``: numeric axes whose pick is an end value
  (one that cannot grow: a bound, or the ``max_grow`` limit), with it."""

  best: dict
  score: float
  tried: list[dict]
  edges: dict

  def record(self) -> dict:
    """What a study keeps of it in its results (all four fields)."""
    return dict(best=self.best, score=self.score, edges=self.edges,
                tried=self.tried)


def coordinate_search(evaluate: Callable[[dict], float], axes: Sequence[Axis],
                      start: dict, *, rounds: int = 3,
                      max_grow: int = 3,
                      log: Callable[[str], None] | None = print,
                      known: Sequence[dict] = ()) -> Search:
  """Minimises ``evaluate(settings)`` one axis at a time.

  Args:
    evaluate: settings dict -> score (lower is better).
    axes: the axes to sweep, in sweep order.
    start: the starting settings (every axis' name; other keys are passed
      through unchanged).
    rounds: at most this many full sweeps (stops early when one changes
      nothing).
    max_grow: at most this many values added to an axis in all.
    log: one line per new evaluation, the settings with their ``score`` as
      JSON (None: silent); ``known`` rows are not logged again.
    known: such rows of an earlier, interrupted search of the same
      ``evaluate``: used instead of evaluating again (a resumed search
      retraces the same path).

  Returns:
    A :class:`Search`.
  """
  missing = [a.name for a in axes if a.name not in start]
  if missing:
    raise ValueError(f"start lacks the axes {missing}")
  cache: dict[str, float] = {}
  tried: list[dict] = []
  earlier = {json.dumps({k: v for k, v in row.items() if k != "score"},
                        sort_keys=True): float(row["score"]) for row in known}

  def score(settings: dict) -> float:
    key = json.dumps(settings, sort_keys=True)
    if key not in cache:
      cache[key] = (earlier[key] if key in earlier
                    else float(evaluate(dict(settings))))
      tried.append(dict(settings, score=cache[key]))
      if log and key not in earlier:  # a resumed row is in the log already
        log(json.dumps(tried[-1]))
    return cache[key]

  best = dict(start)
  values = {a.name: list(a.values) for a in axes}
  for a in axes:
    if best[a.name] not in values[a.name]:
      values[a.name].append(best[a.name])
      values[a.name].sort()
  for _ in range(rounds):
    changed = False
    for axis in axes:
      pick = _sweep(axis, values[axis.name], best, score,
                    max_grow - (len(values[axis.name]) - len(axis.values)))
      if pick != best[axis.name]:
        best[axis.name], changed = pick, True
    if not changed:
      break
  edges = {}
  for axis in axes:  # numbers only: a named choice has no edge
    vals, pick = values[axis.name], best[axis.name]
    if (len(vals) > 1 and pick in (vals[0], vals[-1]) and
        isinstance(pick, (int, float)) and not isinstance(pick, bool)):
      edges[axis.name] = pick
  return Search(best, score(best), tried, edges)


def _sweep(axis: Axis, vals: list, best: dict, score, max_grow: int):
  """The best value of one axis (others fixed), growing past an end."""
  def at(value):
    return score(dict(best, **{axis.name: value}))

  pick = min(vals, key=at)
  for _ in range(max_grow):
    if axis.grow is None or pick not in (vals[0], vals[-1]) or len(vals) < 2:
      break
    upward = pick == vals[-1]
    nxt = axis.grow(pick, upward)
    if nxt is None or nxt in vals:
      break
    vals.insert(len(vals) if upward else 0, nxt)
    if at(nxt) >= at(pick):
      break
    pick = nxt
  return pick


def logged_search(evaluate: Callable[[dict], float], axes: Sequence[Axis],
                  start: dict, path, **kwargs) -> Search:
  """:func:`coordinate_search` that appends every evaluation to the JSON
  lines file ``path`` (and prints it), resuming from the rows already
  there; ``kwargs`` as for :func:`coordinate_search`."""
  path = pathlib.Path(path)
  known = ([json.loads(line) for line in path.read_text().splitlines()
            if line.strip()] if path.exists() else [])

  def log(line):
    print(line, flush=True)
    with path.open("a", encoding="utf-8") as f:
      f.write(line + "\n")
  return coordinate_search(evaluate, axes, start, log=log, known=known,
                           **kwargs)
