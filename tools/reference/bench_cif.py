"""Peer benchmark: FunASR's per-frame CIF loop, forward + backward, PyTorch eager, fp32, CPU.

`./xllm bench cif` starts this script once and drives it over stdin/stdout so that its runs interleave with
xllm's (one xllm run, one peer run, ...). Protocol, one JSON object per stdout line (logs go to stderr):

  start      prints {"ready": true, "versions": {...}, ...config} after building the inputs
  "run\\n"    one timed forward + backward; prints {"forward_ms", "total_ms", "cpu_ms", "tokens"}
  "quit\\n"   (or end of input) prints {"peak_rss_mib": ...} and exits

The computation, fixed so the Java side can do the same:

  inputs     hidden = torch.randn(B, U, D), alphas = torch.rand(B, U) * --max-alpha, both from
             torch.Generator().manual_seed(0), requires_grad on both, the same tensors in every run
             (defaults B=16, U=1000, D=512, max alpha 0.5: about U/4 = 250 tokens per row)
  forward    cif_loop(hidden, alphas, threshold=1.0): FunASR's `cif` (funasr/models/paraformer/cif_predictor.py
             @ 57f97776; docs/CIF.md "the loop we must equal"): per frame t, integrate += alpha_t, a token fires
             when integrate >= 1, the finishing token takes (1 - integrate_prev) * h_t and the next starts with
             the rest; fired frames gathered per row with index_select and zero-padded to max round(sum alpha)
  loss       embeds.sum(); backward to hidden and alphas (their .grad are cleared before each run)
  timing     time.perf_counter() around the forward (forward_ms) and forward + backward (total_ms);
             cpu_ms is time.process_time() over the same span (all threads)

Usage (standalone): printf 'run\\nrun\\nquit\\n' | python tools/reference/bench_cif.py [--batch 16]
           [--frames 1000] [--width 512] [--max-alpha 0.5] [--threads 2]
"""
import argparse
import json
import sys
import time

import torch

from bench_hf_generate import log, peak_rss_mib
from reference_common import library_versions


def cif_loop(hidden: torch.Tensor, alphas: torch.Tensor, threshold: float):
    """FunASR's per-frame integrate-and-fire; hidden (B, U, D), alphas (B, U) -> (embeds (B, L, D), fires (B, U))."""
    batch, frames, width = hidden.shape
    integrate = torch.zeros(batch, dtype=hidden.dtype)
    frame = torch.zeros(batch, width, dtype=hidden.dtype)
    fire_trace, frame_trace = [], []
    for t in range(frames):
        alpha = alphas[:, t]
        completion = 1.0 - integrate
        integrate = integrate + alpha
        fire_trace.append(integrate)
        fired = integrate >= threshold
        integrate = torch.where(fired, integrate - 1.0, integrate)
        current = torch.where(fired, completion, alpha)
        rest = alpha - current
        frame = frame + current[:, None] * hidden[:, t, :]
        frame_trace.append(frame)
        frame = torch.where(fired[:, None].expand(batch, width), rest[:, None] * hidden[:, t, :], frame)
    fires = torch.stack(fire_trace, 1)   # (B, U)
    stacked = torch.stack(frame_trace, 1)  # (B, U, D)
    lengths = torch.round(alphas.sum(-1)).int()
    longest = int(lengths.max())
    rows = []
    for b in range(batch):
        tokens = torch.index_select(stacked[b], 0, torch.nonzero(fires[b] >= threshold).squeeze(-1))
        padding = torch.zeros(longest - tokens.shape[0], width, dtype=hidden.dtype)
        rows.append(torch.cat([tokens, padding], 0))
    return torch.stack(rows, 0), fires


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--max-alpha", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args()
    if min(arguments.batch, arguments.frames, arguments.width) < 1 or not 0 < arguments.max_alpha <= 1:
        parser.error("--batch, --frames, --width must be >= 1 and --max-alpha in (0, 1]")
    torch.set_num_threads(arguments.threads)

    generator = torch.Generator().manual_seed(0)
    shape = (arguments.batch, arguments.frames)
    hidden = torch.randn(*shape, arguments.width, generator=generator).requires_grad_(True)
    alphas = (torch.rand(*shape, generator=generator) * arguments.max_alpha).requires_grad_(True)

    def emit(value: dict) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    emit({"ready": True, "engine": "pytorch-eager", "loop": "funasr cif @ 57f97776", "batch": arguments.batch,
          "frames": arguments.frames, "width": arguments.width, "max_alpha": arguments.max_alpha,
          "threads": arguments.threads, "versions": library_versions()})
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command != "run":
            log(f"bench_cif.py: unknown command {command!r} (expected run or quit)")
            sys.exit(2)
        hidden.grad = None
        alphas.grad = None
        start, cpu_start = time.perf_counter(), time.process_time()
        embeds, _ = cif_loop(hidden, alphas, 1.0)
        loss = embeds.sum()
        loss.item()
        forward = time.perf_counter()
        loss.backward()
        end, cpu_end = time.perf_counter(), time.process_time()
        result = {"forward_ms": 1000 * (forward - start), "total_ms": 1000 * (end - start),
                  "cpu_ms": 1000 * (cpu_end - cpu_start), "tokens": embeds.shape[1]}
        log(f"peer run: forward {result['forward_ms']:.1f} ms, forward+backward {result['total_ms']:.1f} ms")
        emit(result)
    emit({"peak_rss_mib": peak_rss_mib()})


if __name__ == "__main__":
    main()
