"""Peer benchmark: images/s of the frozen EfficientNet-Lite0 encoder + a "demo" Q-Former, PyTorch eager, fp32, CPU.

Prints exactly one JSON object on stdout (everything else goes to stderr): images/s of the encoder, of the
Q-Former and of both in sequence (medians over --repeats timed runs after one warm-up run), per-run seconds,
peak RSS in MiB (VmHWM) and library versions. The Java side (`./xllm bench vision`) runs the same computation:

  encoder    efficientnet-lite-pytorch 0.1.0, EfficientNet.from_pretrained("efficientnet-lite0",
             weights_path=--weights).eval(); features = extract_features(images) (B, 1280, 7, 7)
             -> flatten(2).transpose(1, 2) = (B, 49, 1280) tokens
  Q-Former   transformers.Blip2QFormerModel(Blip2QFormerConfig(hidden_size=384, num_hidden_layers=4,
             num_attention_heads=6, intermediate_size=1536, cross_attention_frequency=2,
             encoder_hidden_size=1280, layer_norm_eps=1e-12)).eval(), randomly initialised (torch.manual_seed(0));
             learned queries (1, 32, 384) ~ N(0, 0.02), expanded to (B, 32, 384) as query_embeds;
             encoder_hidden_states = the encoder tokens, no mask -> last_hidden_state (B, 32, 384)
  inputs     torch.randn(B, 3, 224, 224, generator=torch.Generator().manual_seed(0)) (--batch, default 32),
             the same tensor in every run
  timing     inside torch.inference_mode(); one warm-up run, then --repeats runs (default 3), each timing the
             encoder and the Q-Former separately with time.perf_counter(); images_per_s of a run is
             B / (encoder + Q-Former seconds); each reported metric is the median over runs

Usage: python tools/reference/bench_vision.py --weights efficientnet-lite0-57934424.pth [--batch 32] \\
           [--threads 2] [--repeats 3] [--json OUT]
Needs torch, transformers and efficientnet-lite-pytorch==0.1.0 (install it with --no-deps).
"""
import argparse
import contextlib
import json
import platform
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path

import torch

from bench_hf_generate import current_rss_mib, log, peak_rss_mib

QFORMER = dict(hidden_size=384, num_hidden_layers=4, num_attention_heads=6, intermediate_size=1536,
               cross_attention_frequency=2, encoder_hidden_size=1280, layer_norm_eps=1e-12)
QUERY_TOKENS = 32
IMAGE_SIZE = 224


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="efficientnet-lite0-57934424.pth")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the JSON result to this file")
    arguments = parser.parse_args()
    if arguments.batch < 1 or arguments.repeats < 1:
        parser.error("--batch and --repeats must be at least 1")
    torch.set_num_threads(arguments.threads)

    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the result
        from efficientnet_lite_pytorch import EfficientNet
        from transformers import Blip2QFormerConfig, Blip2QFormerModel

        load_start = time.perf_counter()
        encoder = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=arguments.weights).eval()
        torch.manual_seed(0)
        qformer = Blip2QFormerModel(Blip2QFormerConfig(**QFORMER)).eval()
        query_tokens = torch.randn(1, QUERY_TOKENS, QFORMER["hidden_size"]) * 0.02
        load_seconds = time.perf_counter() - load_start
        images = torch.randn(arguments.batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(0))
        rss_after_load = current_rss_mib()

        runs = []
        with torch.inference_mode():
            for index in range(1 + arguments.repeats):
                start = time.perf_counter()
                features = encoder.extract_features(images).flatten(2).transpose(1, 2)  # (B, 49, 1280)
                middle = time.perf_counter()
                queries = query_tokens.expand(arguments.batch, -1, -1)
                output = qformer(query_embeds=queries, encoder_hidden_states=features).last_hidden_state
                end = time.perf_counter()
                if tuple(output.shape) != (arguments.batch, QUERY_TOKENS, QFORMER["hidden_size"]):
                    raise RuntimeError(f"unexpected Q-Former output shape {tuple(output.shape)}")
                run = {"encoder": middle - start, "qformer": end - middle}
                log(f"{'warm-up' if index == 0 else 'run'} {index}: encoder {run['encoder']:.3f} s, "
                    f"Q-Former {run['qformer']:.3f} s")
                if index > 0:
                    runs.append(run)

    batch = arguments.batch
    result = {
        "engine": "pytorch-eager",
        "dtype": "float32",
        "device": "cpu",
        "batch": batch,
        "image_size": IMAGE_SIZE,
        "feature_tokens": int(features.shape[1]),
        "query_tokens": QUERY_TOKENS,
        "qformer_config": QFORMER,
        "threads": arguments.threads,
        "repeats": arguments.repeats,
        "load_seconds": load_seconds,
        "images_per_s_median": statistics.median(batch / (r["encoder"] + r["qformer"]) for r in runs),
        "encoder_images_per_s_median": statistics.median(batch / r["encoder"] for r in runs),
        "qformer_images_per_s_median": statistics.median(batch / r["qformer"] for r in runs),
        "encoder_seconds": [r["encoder"] for r in runs],
        "qformer_seconds": [r["qformer"] for r in runs],
        "encoder_parameters": sum(p.numel() for p in encoder.parameters()),
        "qformer_parameters": sum(p.numel() for p in qformer.parameters()) + query_tokens.numel(),
        "rss_after_load_mib": rss_after_load,
        "peak_rss_mib": peak_rss_mib(),
        "versions": {"python": platform.python_version(),
                     **{name: version(name) for name in ["torch", "transformers", "efficientnet-lite-pytorch"]}},
    }
    text = json.dumps(result, indent=1)
    if arguments.json:
        Path(arguments.json).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
