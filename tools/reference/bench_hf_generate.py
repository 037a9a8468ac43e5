"""Peer benchmark: HF transformers fp32 greedy generation of a GGUF model on the CPU.

Prints exactly one JSON object on stdout (everything else goes to stderr): prefill tokens/s, decode tokens/s
measured two ways, peak RSS in MiB and library versions, each timing the median over --repeats (the
per-repeat times are included, to show noise from other work on the machine). The Java
benchmark command runs this script as a subprocess and parses that JSON to put xllm beside transformers.

  prefill      one forward over the N prompt tokens (after a warm-up run)
  generate     model.generate(max_new_tokens=M, min_new_tokens=M, do_sample=False); its decode rate is
               (M - 1) / (generate time - prefill time), since the first new token comes from the prefill
  manual       prefill with the cache, then M - 1 single-token forwards with past_key_values, each timed

Usage: python tools/reference/bench_hf_generate.py --gguf PATH --prompt-tokens 64 --new-tokens 64 \\
           --threads 2 --repeats 3 [--json OUT]
"""
import argparse
import contextlib
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

from reference_common import library_versions, load_gguf_model, load_gguf_tokenizer

# Repeated until the prompt has N tokens; fixed so that every run and every machine sees the same ids.
PROMPT_TEXT = (
    "The history of computing is a story of people trying to make machines do arithmetic faster than they "
    "could do it themselves. Early mechanical calculators used gears and levers; later machines used relays, "
    "vacuum tubes, transistors and finally integrated circuits holding billions of switches. ")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prompt_ids(tokenizer, count: int) -> torch.Tensor:
    ids = tokenizer.encode(PROMPT_TEXT, add_special_tokens=False)
    while len(ids) < count:
        ids = ids + ids
    return torch.tensor([ids[:count]])  # (1, N)


def peak_rss_mib() -> float:
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across execve, so a script started by a large
    # process (the Java benchmark) would report its parent's peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # not Linux: KiB there too


def current_rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / (1024.0 * 1024.0)


@torch.no_grad()
def time_prefill(model, ids: torch.Tensor) -> float:
    start = time.perf_counter()
    model(ids, use_cache=False)
    return time.perf_counter() - start


@torch.no_grad()
def time_generate(model, ids: torch.Tensor, new_tokens: int) -> float:
    start = time.perf_counter()
    output = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                            max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    elapsed = time.perf_counter() - start
    if output.shape[1] - ids.shape[1] != new_tokens:
        raise RuntimeError(f"generate produced {output.shape[1] - ids.shape[1]} tokens, wanted {new_tokens}")
    return elapsed


@torch.no_grad()
def time_manual_decode(model, ids: torch.Tensor, new_tokens: int) -> tuple[float, list[float]]:
    """Greedy loop over the KV cache; returns the prefill time and the time of each of the M - 1 decode steps."""
    start = time.perf_counter()
    output = model(ids, use_cache=True)
    prefill = time.perf_counter() - start
    past, next_id = output.past_key_values, output.logits[:, -1].argmax(-1, keepdim=True)  # (1, 1)
    steps = []
    for _ in range(new_tokens - 1):
        start = time.perf_counter()
        output = model(next_id, past_key_values=past, use_cache=True)
        past, next_id = output.past_key_values, output.logits[:, -1].argmax(-1, keepdim=True)
        steps.append(time.perf_counter() - start)
    return prefill, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", required=True, help="path to the GGUF checkpoint")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the JSON result to this file")
    arguments = parser.parse_args()
    if arguments.new_tokens < 2 or arguments.repeats < 1:
        parser.error("--new-tokens must be at least 2 and --repeats at least 1")
    torch.set_num_threads(arguments.threads)

    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the result
        load_start = time.perf_counter()
        tokenizer = load_gguf_tokenizer(arguments.gguf)
        model = load_gguf_model(arguments.gguf, "sdpa")
        load_seconds = time.perf_counter() - load_start
        rss_after_load = current_rss_mib()
        ids = prompt_ids(tokenizer, arguments.prompt_tokens)
        new_tokens = arguments.new_tokens

        log("warm-up")
        time_prefill(model, ids)
        time_generate(model, ids, 4)

        prefill_times, generate_times, manual_steps = [], [], []
        for repeat in range(arguments.repeats):
            prefill_times.append(time_prefill(model, ids))
            generate_times.append(time_generate(model, ids, new_tokens))
            manual_steps.append(time_manual_decode(model, ids, new_tokens)[1])
            log(f"repeat {repeat}: prefill {prefill_times[-1]:.3f}s generate {generate_times[-1]:.3f}s "
                f"manual decode {sum(manual_steps[-1]):.3f}s")

    prefill = statistics.median(prefill_times)
    generate = statistics.median(generate_times)
    manual_decode = statistics.median(sum(steps) for steps in manual_steps)
    decode_steps = new_tokens - 1
    result = {
        "engine": "transformers",
        "model": Path(arguments.gguf).name,
        "dtype": "float32",
        "attn_implementation": model.config._attn_implementation,
        "device": "cpu",
        "threads": arguments.threads,
        "prompt_tokens": arguments.prompt_tokens,
        "new_tokens": new_tokens,
        "repeats": arguments.repeats,
        "load_seconds": load_seconds,
        "prefill_seconds": prefill,
        "prefill_tokens_per_second": arguments.prompt_tokens / prefill,
        "generate_seconds": generate,
        "generate_decode_tokens_per_second": decode_steps / (generate - prefill),
        "generate_end_to_end_tokens_per_second": new_tokens / generate,
        "manual_decode_seconds": manual_decode,
        "manual_decode_tokens_per_second": decode_steps / manual_decode,
        "manual_decode_step_ms_median": 1000.0 * statistics.median(
            step for steps in manual_steps for step in steps),
        "per_repeat_seconds": {"prefill": prefill_times, "generate": generate_times,
                               "manual_decode": [sum(steps) for steps in manual_steps]},
        "rss_after_load_mib": rss_after_load,
        "peak_rss_mib": peak_rss_mib(),
        "versions": library_versions(),
    }
    text = json.dumps(result, indent=1)
    if arguments.json:
        Path(arguments.json).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
