"""Executes the quickstart notebook in place, so its outputs are committed.

    python scripts/execute_notebook.py --checkpoint demo_out/maskgit

(``make notebook``; needs a finished ``make demo``). The pictures in the
committed notebook then come from the demo model, so the notebook reads on
a repository page; the test suite executes it again on a tiny model.
"""

import argparse
import os
import pathlib
import sys

import nbclient
import nbformat

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / (
    "quickstart.ipynb")


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--checkpoint", default="demo_out/maskgit")
  args = parser.parse_args(argv)
  checkpoint = pathlib.Path(args.checkpoint).resolve()
  if not (checkpoint / "checkpoints").is_dir():
    print(f"error: no checkpoint at {checkpoint} (run make demo first)",
          file=sys.stderr)
    return 2
  os.environ["MASKGIT_CHECKPOINT"] = str(checkpoint)
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  nbclient.NotebookClient(
      notebook, timeout=600, kernel_name="python3",
      resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
  for cell in notebook.cells:  # no machine-specific paths in the repository
    for output in cell.get("outputs", []):
      if "text" in output:
        output["text"] = output["text"].replace(str(checkpoint),
                                                "demo_out/maskgit")
  nbformat.write(notebook, NOTEBOOK)
  print(f"wrote {NOTEBOOK} with outputs from {checkpoint}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
