"""Peer benchmark: llama.cpp (llama-cpp-python) greedy decoding of a GGUF model on the CPU, on its own quantised blocks.

Prints exactly one JSON object on stdout (everything else goes to stderr): prefill tokens/s, decode tokens/s, time
to first token and peak RSS (VmHWM) in MiB, each timing the median over --repeats. The prompt is given as token ids
(--prompt-ids), so that llama.cpp sees exactly the ids xllm decodes (its own tokenizer splits digits differently).

  prefill   llama_decode over the N prompt ids in one batch (KV cache cleared first), after a warm-up run
  ttft      prefill plus choosing the first token
  decode    M - 1 single-token llama_decode calls, each fed the greedy (argmax) token of the previous one

Usage: python tools/reference/bench_llamacpp.py --gguf PATH --prompt-ids 1,2,3 --new-tokens 64 --threads 2 \\
           --repeats 3 [--json OUT]
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import llama_cpp
import numpy as np


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def last_logits(llm: llama_cpp.Llama) -> np.ndarray:
    """The logits of the last evaluated position (llama-cpp-python keeps no scores without logits_all)."""
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))


def run_once(llm: llama_cpp.Llama, ids: list[int], new_tokens: int) -> tuple[float, float, float, list[int]]:
    """Seconds of (prefill, prefill + first token, M - 1 decode steps) and the greedy tokens."""
    llm.reset()
    start = time.perf_counter()
    llm.eval(ids)
    prefill = time.perf_counter() - start
    token = int(np.argmax(last_logits(llm)))
    ttft = time.perf_counter() - start
    tokens = [token]
    start = time.perf_counter()
    for _ in range(new_tokens - 1):
        llm.eval([token])
        token = int(np.argmax(last_logits(llm)))
        tokens.append(token)
    return prefill, ttft, time.perf_counter() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", required=True)
    parser.add_argument("--prompt-ids", required=True, help="comma-separated token ids")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the JSON result to this file")
    arguments = parser.parse_args()
    ids = [int(t) for t in arguments.prompt_ids.split(",")]
    n = arguments.new_tokens

    llm = llama_cpp.Llama(model_path=arguments.gguf, n_ctx=len(ids) + n + 8, n_batch=max(512, len(ids)),
                          n_threads=arguments.threads, n_threads_batch=arguments.threads, logits_all=False,
                          verbose=False)
    run_once(llm, ids, n)  # warm-up
    prefill, ttft, decode = [], [], []
    tokens = []
    for r in range(arguments.repeats):
        p, t, d, tokens = run_once(llm, ids, n)
        prefill.append(p)
        ttft.append(t)
        decode.append(d)
        log(f"llama.cpp repeat {r}: prefill {len(ids) / p:.1f} tok/s, decode {(n - 1) / d:.1f} tok/s")
    result = {
        "prefill_tokens_per_second": len(ids) / statistics.median(prefill),
        "decode_tokens_per_second": (n - 1) / statistics.median(decode),
        "time_to_first_token_seconds": statistics.median(ttft),
        "peak_rss_mib": peak_rss_mib(),
        "greedy_tokens": tokens,
        "prefill_seconds": prefill,
        "decode_seconds": decode,
        "versions": {"llama_cpp_python": llama_cpp.__version__, "numpy": np.__version__},
    }
    text = json.dumps(result, indent=1)
    if arguments.json:
        Path(arguments.json).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
