"""Renders ``results.json`` of ``make bench`` into ``RESULTS.md``'s generated
section (between the ``bench`` markers; hand-written sections are kept)."""

from __future__ import annotations

import math
import pathlib

START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _crossover(rows: list[dict], grid: str) -> str:
  """Batch where the KV-cache decoder starts to beat MaskGIT (log-interp)."""
  pts = sorted((r["batch"], r["ratio"]) for r in rows
               if r["grid"] == grid and r["baseline"] == "kv_cache")
  for (b0, r0), (b1, r1) in zip(pts, pts[1:]):
    if (r0 - 1) * (r1 - 1) <= 0 and r0 != r1:
      frac = math.log(r0) / (math.log(r0) - math.log(r1))
      return f"~{math.exp(math.log(b0) + frac * math.log(b1 / b0)):.0f}"
  if all(r > 1 for _, r in pts):
    return f"> {pts[-1][0]} (MaskGIT faster at every batch measured)"
  return f"< {pts[0][0]} (the cached decoder faster at every batch measured)"


def render(res: dict) -> str:
  peak = res["matmul_gflops"]
  lines = [
      f"`make bench` on {res['device']}, jax {res['versions']['jax']}, "
      f"{res['date']}{' (QUICK smoke run)' if res.get('quick') else ''}. "
      "Raw numbers: `benchmarks/results.json`.", "",
      "### Hardware ceilings (measured in the same run)", "",
      "| ceiling | measured |", "|---|---|",
      f"| float32 matmul | {peak:.1f} GFLOP/s |",
      f"| bfloat16 matmul, f32 accumulation | "
      f"{res['matmul_bf16_gflops']:.1f} GFLOP/s |",
      f"| copy bandwidth (read + write) | {res['copy_gbs']:.1f} GB/s |", "",
      "### Decode overhead: what the work around the forward passes costs",
      "",
      "Overhead = decode time / (T x one forward pass): 1.00 means the "
      "sampling, sorting and random numbers around the forward passes cost "
      "nothing. `gumbel`, loop is the official program (bit-exact parity); "
      "`cdf` draws one uniform number per token instead of one per token "
      "and code; unrolled runs the T iterations as straight-line code. "
      "Draw = one iteration's sampling, confidence and re-mask choice timed "
      "alone, as a share of one forward pass.", "",
      "| grid | batch | sampler | loop | decode (s) | overhead | draw / "
      "forward | compile (s) |", "|---|---|---|---|---|---|---|---|"]
  for r in res.get("overhead", []):
    lines.append(
        f"| {r['grid']} | {r['batch']} | {r['sampler']} | "
        f"{'unrolled' if r['unroll'] else 'fori_loop'} | {r['seconds']:.3f} "
        f"| {r['overhead']:.2f} | {r['sample_s'] / r['forward_s']:.0%} | "
        f"{r['compile_s']:.1f} |")
  lines += [
      "", "### Parallel decode (transformer only; MaskGIT hidden "
      f"{res['model']['hidden']}, {res['model']['layers']} layers, codebook "
      f"{res['model']['codebook']}; `cdf` sampler in a `fori_loop`: the "
      "`Generator` default)", "",
      "| grid | T | batch | decode (s) | images/s | + VQGAN decode (s) | "
      "GFLOP/s | % of matmul peak | overhead | compile (s) |",
      "|---|---|---|---|---|---|---|---|---|---|"]
  for r in res["decode"]:
    lines.append(
        f"| {r['grid']} | {r['T']} | {r['batch']} | {r['seconds']:.3f} | "
        f"{r['images_per_s']:.1f} | {r['with_vqgan_s']:.3f} | "
        f"{r['gflops']:.1f} | {r['gflops'] / peak:.0%} | "
        f"{r['overhead']:.2f} | {r['compile_s']:.1f} |")
  lines += ["", "Forward FLOPs per pass, analytic vs XLA cost analysis: " +
            ", ".join(sorted({
                f"{r['grid']} batch {r['batch']}: {r['forward_gflop']:.2f} "
                f"vs {r['xla_forward_gflop']:.2f} GFLOP"
                for r in res["decode"] if r["T"] == res["decode"][0]["T"]})),
            "", "### MaskGIT (T=8) vs autoregressive decoding of the same "
            "network size", "",
            "| grid | batch | baseline | MaskGIT (s) | AR (s) | speedup |",
            "|---|---|---|---|---|---|"]
  for r in res["ar_speedup"]:
    note = ("" if r["extrapolated_from_steps"] == r["ar_steps"] else
            f" (timed {r['extrapolated_from_steps']} of {r['ar_steps']} "
            "steps, scaled)")
    lines.append(f"| {r['grid']} | {r['batch']} | {r['baseline']}{note} | "
                 f"{r['maskgit_s']:.3f} | {r['ar_s']:.3f} | "
                 f"{r['ratio']:.1f}x |")
  grids = list(dict.fromkeys(r["grid"] for r in res["ar_speedup"]))
  lines += ["", "Batch size where the KV-cache decoder catches up with "
            "MaskGIT: " + "; ".join(
                f"{g}: {_crossover(res['ar_speedup'], g)}" for g in grids),
            "", "### Training throughput", "",
            "| model | step (s) | tokens/s | GFLOP/step | GFLOP/s | MFU vs "
            "measured f32 matmul | peak RSS (MB) |",
            "|---|---|---|---|---|---|---|"]
  for r in res["train"]:
    lines.append(
        f"| {r['model']} | {r['seconds']:.3f} | {r['tokens_per_s']:.0f} | "
        f"{r['gflop_per_step']:.1f} | {r['gflops']:.1f} | {r['mfu']:.0%} | "
        f"{r['peak_rss_mb']:.0f} |")
  profiles = [p for p in res.get("demo_step_profiles", []) if p]
  if profiles:
    from benchmarks import step_profile  # pylint: disable=g-import-not-at-top
    lines += ["", "### Where the demo transformer step's time goes", "",
              "XLA operation time by kind, from a `jax.profiler` trace "
              "(`python -m benchmarks.step_profile`); thread time, so the "
              "rows add up to more than the step on several cores."]
    for p in profiles:
      lines += ["", f"On {p['devices']} CPU device(s): "
                + step_profile.markdown(p, res["matmul_gflops"])]
  from benchmarks import inference  # pylint: disable=g-import-not-at-top
  lines += inference.markdown(res)
  lines += ["", f"Decode benchmark peak RSS: {res['decode_peak_rss_mb']:.0f} "
            "MB."]
  return "\n".join(lines)


def update_results_md(res: dict, path: pathlib.Path) -> None:
  text = path.read_text() if path.exists() else "# Benchmark results\n"
  block = f"{START}\n{render(res)}\n{END}"
  if START in text and END in text:
    head, rest = text.split(START, 1)
    text = head + block + rest.split(END, 1)[1]
  else:
    text = text.rstrip() + "\n\n## make bench\n\n" + block + "\n"
  path.write_text(text)
