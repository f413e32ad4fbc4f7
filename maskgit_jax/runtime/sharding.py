"""Device mesh, logical-axis rules -> NamedSharding, and sharded state creation.

The mesh has axes ``('data', 'fsdp', 'model')``. Models annotate parameters
and activations with logical axis names; ``rules`` (from the config) map those
names to mesh axes. State is never built on one device and scattered:
:func:`create_sharded` evaluates the init function abstractly, derives every
leaf's sharding from its logical names, and runs the init under ``jax.jit``
with those ``out_shardings``.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "model")
BATCH_AXES = ("data", "fsdp")

Rules = Sequence[tuple[str, Any]]


CPU_DEVICES_FLAG = "--xla_force_host_platform_device_count"
# XLA:CPU pool threads per split device (see split_host_cpu).
CPU_THREADS_PER_DEVICE = 2


def split_host_cpu(devices: int | None = None) -> int:
  """Makes XLA expose the host CPU as several devices (call before JAX starts).

  XLA:CPU runs a program's small operations on one thread, so one CPU
  device leaves cores idle between the big matmuls and convolutions. Run
  data-parallel over several CPU devices (every mesh here splits the batch
  over all of them), the programs of the devices fill each other's gaps:
  on 2 cores, 4 devices made the demo tokenizer step 2.2x and the
  transformer step 1.2x faster (docs/studies/demo_efficiency.md). Only the host
  platform is affected: on a TPU or GPU machine the accelerators stay the
  default devices.

  It also sizes XLA:CPU's thread pool (``PJRT_NPROC``, when unset) to
  :data:`CPU_THREADS_PER_DEVICE` threads per device. The devices' all-reduce
  runs on that pool and blocks a thread until every device arrives; with
  the default pool (the larger of the cores and the devices) a
  data-parallel step dispatched ahead of the previous one deadlocked (the
  rendezvous' 40 s timeout aborts the process), as
  ``tests/runtime/test_cpu_devices.py`` reproduces.

  Args:
    devices: how many; default: twice the cores, rounded down to a power of
      two (so that power-of-two batches divide evenly), at most 8.

  Returns:
    The device count in effect. An ``XLA_FLAGS`` that already sets the
    count wins, as does an existing ``PJRT_NPROC``; nothing changes once a
    JAX backend has started.
  """
  flags = os.environ.get("XLA_FLAGS", "")
  if CPU_DEVICES_FLAG in flags:
    devices = int(flags.split(CPU_DEVICES_FLAG + "=", 1)[1].split()[0])
  else:
    if devices is None:
      devices = min(8, 2 ** int(math.log2(2 * (os.cpu_count() or 1))))
    if devices < 1:
      raise ValueError(f"devices must be positive, got {devices}")
    os.environ["XLA_FLAGS"] = f"{flags} {CPU_DEVICES_FLAG}={devices}".strip()
  os.environ.setdefault("PJRT_NPROC", str(max(
      CPU_THREADS_PER_DEVICE * devices, os.cpu_count() or 1)))
  return devices


class InFlight:
  """Keeps at most ``depth`` dispatched steps running ahead of the host.

  JAX dispatches asynchronously, so a training loop can queue many steps.
  With a split host CPU (:func:`split_host_cpu`) a long queue of
  data-parallel steps is what deadlocked XLA:CPU's collectives; waiting for
  step ``k - depth`` after dispatching step ``k`` keeps the overlap of
  host work and device work and bounds the queue. Usage::

    in_flight = InFlight()
    for ...:
      state, metrics = step(state, batch)
      in_flight.push(metrics)
  """

  def __init__(self, depth: int = 1):
    if depth < 1:
      raise ValueError(f"depth must be at least 1, got {depth}")
    self.depth = depth
    self._pending: list[Any] = []

  def push(self, outputs: Any) -> None:
    """Records a step's outputs; waits for the oldest beyond ``depth``."""
    self._pending.append(outputs)
    while len(self._pending) > self.depth:
      jax.block_until_ready(self._pending.pop(0))


def resolve_mesh_shape(mesh_shape: Sequence[int], num_devices: int
                       ) -> tuple[int, ...]:
  """Fills the one ``-1`` entry so that the product equals ``num_devices``.

  Raises:
    ValueError: naming the shape and the device count when they don't fit.
  """
  shape = [int(s) for s in mesh_shape]
  if len(shape) != len(MESH_AXES):
    raise ValueError(f"mesh_shape {tuple(mesh_shape)} must have "
                     f"{len(MESH_AXES)} entries for axes {MESH_AXES}")
  if shape.count(-1) > 1 or any(s == 0 or s < -1 for s in shape):
    raise ValueError(f"mesh_shape {tuple(mesh_shape)}: sizes must be positive "
                     "with at most one -1")
  known = math.prod(s for s in shape if s != -1)
  if -1 in shape:
    if num_devices % known:
      raise ValueError(f"mesh_shape {tuple(mesh_shape)} does not divide the "
                       f"{num_devices} devices")
    shape[shape.index(-1)] = num_devices // known
  if math.prod(shape) != num_devices:
    raise ValueError(f"mesh_shape {tuple(mesh_shape)} needs "
                     f"{math.prod(shape)} devices, found {num_devices}")
  return tuple(shape)


def make_mesh(mesh_shape: Sequence[int],
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A ``('data', 'fsdp', 'model')`` mesh over ``devices`` (default: all).

  Uses the classic (auto-sharded) axis types so that GSPMD propagates
  shardings from the logical constraints.
  """
  devices = list(jax.devices() if devices is None else devices)
  shape = resolve_mesh_shape(mesh_shape, len(devices))
  try:
    grid = mesh_utils.create_device_mesh(shape, devices=devices)
  except (AssertionError, NotImplementedError, ValueError):
    grid = np.asarray(devices).reshape(shape)  # e.g. CPU or odd topologies
  return Mesh(grid, MESH_AXES)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over ('data', 'fsdp'), the rest replicated."""
  return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_parallel_size(mesh: Mesh) -> int:
  return mesh.shape["data"] * mesh.shape["fsdp"]


def logical_shardings(abstract_tree, mesh: Mesh, rules: Rules):
  """NamedShardings for a tree whose leaves may be ``nn.LogicallyPartitioned``.

  Returns a tree with the structure of ``nn.unbox(abstract_tree)``; leaves
  without logical names are replicated.
  """
  specs = nn.get_partition_spec(abstract_tree)
  return nn.logical_to_mesh_sharding(specs, mesh, list(map(tuple, rules)))


def create_sharded(init_fn: Callable[..., Any], mesh: Mesh, rules: Rules,
                   *args) -> tuple[Any, Any]:
  """Runs ``init_fn(*args)`` so that every output leaf is born sharded.

  Args:
    init_fn: returns a pytree whose parameter leaves are boxed with logical
      names (``nn.with_logical_partitioning``); scalars such as optimizer
      counts and the step come out replicated.
    mesh: the device mesh; rules: logical -> mesh axis rules.
    *args: arguments of ``init_fn`` (e.g. an rng key).

  Returns:
    ``(state, shardings)``: the unboxed state and the matching tree of
    NamedShardings (use it for ``in_shardings``/``out_shardings`` and to
    restore checkpoints).
  """
  abstract = jax.eval_shape(init_fn, *args)
  shardings = logical_shardings(abstract, mesh, rules)
  with mesh_context(mesh, rules):
    state = jax.jit(lambda *a: nn.unbox(init_fn(*a)),
                    out_shardings=shardings)(*args)
  return state, shardings


@contextlib.contextmanager
def mesh_context(mesh: Mesh, rules: Rules):
  """Makes ``mesh`` current and ``rules`` the logical axis rules.

  Tracing under it resolves ``nn.with_logical_constraint`` annotations.
  """
  set_mesh = getattr(jax, "set_mesh", None)
  with (set_mesh(mesh) if set_mesh else mesh), nn.logical_axis_rules(
      list(map(tuple, rules))):
    yield


def maybe_initialize_distributed() -> bool:
  """Calls ``jax.distributed.initialize()`` when the environment asks for it.

  Cloud TPU pod slices and SLURM/GPU clusters are detected by JAX itself;
  explicit launches set ``MASKGIT_COORDINATOR`` (host:port),
  ``MASKGIT_NUM_PROCESSES`` and ``MASKGIT_PROCESS_ID``.

  Returns:
    True when a multi-process runtime was initialised.
  """
  coordinator = os.environ.get("MASKGIT_COORDINATOR")
  if coordinator:
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=int(os.environ["MASKGIT_NUM_PROCESSES"]),
        process_id=int(os.environ["MASKGIT_PROCESS_ID"]))
    return True
  if any(k in os.environ for k in ("TPU_WORKER_HOSTNAMES", "SLURM_JOB_ID",
                                   "JAX_COORDINATOR_ADDRESS")):
    jax.distributed.initialize()
    return jax.process_count() > 1
  return False


def process_zero_first(fn: Callable[[], Any], key: str) -> Any:
  """Runs ``fn()`` on process 0 while the other processes wait at one
  barrier named ``key``; returns its result on process 0 (None elsewhere).

  Process 0's error is raised only after the barrier, so the others never
  wait for a process that has failed.
  """
  result, error = None, None
  if jax.process_index() == 0:
    try:
      result = fn()
    except Exception as e:  # pylint: disable=broad-exception-caught
      error = e  # re-raised below, once the others are released
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(key)
  if error is not None:
    raise error
  return result
