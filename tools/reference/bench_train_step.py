"""Peer benchmark: one AdamW step of a small adapter trained through a frozen GGUF LLM, PyTorch eager, fp32, CPU.

Prints exactly one JSON object on stdout (everything else goes to stderr): the median, minimum and per-step
time of a whole optimiser step, the medians of its forward, backward and optimiser parts, the losses, peak
RSS in MiB and library versions. The Java side runs the same computation, so it is fixed here exactly:

  model      SmolLM2-135M-Instruct from the GGUF (--gguf), dequantised by transformers to fp32,
             attn_implementation="sdpa"; requires_grad_(False) on every parameter, model.eval()
  adapter    torch.manual_seed(0), then torch.nn.Linear(32, 576) (weight + bias: the only trainable tensors)
  features   torch.randn(B, 4, 32, generator=torch.Generator().manual_seed(1)), the same in every step
  row        prompt ids 1000..1023 (24) + adapter(features) (4 vectors) + question ids 2000..2011 (12)
             + answer ids 3000..3007 (8): T = 48, identical for all B rows (--batch, default 4), no padding
  forward    inputs_embeds = cat(embed_tokens(prompt), adapter(features), embed_tokens(question),
             embed_tokens(answer)) along the sequence; model.model(inputs_embeds, attention_mask=ones(B, 48),
             position_ids=0..47, use_cache=False) (causal); last hidden state (after the final norm) at
             positions 39..46 only -> model.lm_head -> logits (B, 8, vocab); cross-entropy, mean over the
             B x 8 targets = answer ids (positions 40..47)
  optimiser  torch.optim.AdamW(adapter.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.05)
  one step   zero_grad(); forward; loss.backward(); clip_grad_norm_(adapter.parameters(), 1.0); step()

Timing: --warmup steps (default 3), then --steps timed steps (default 10), each with time.perf_counter():
step_ms is the whole step (zero_grad included); forward_ms is the forward up to and including the loss;
backward_ms is loss.backward(); optimizer_ms is clip_grad_norm_ + step(). loss_first is the loss of the very
first step (warm-up included, i.e. before any update), loss_last the loss of the last timed step; "losses"
lists every step's loss and "grad_norms" the pre-clip gradient norm clip_grad_norm_ returned.

Usage: python tools/reference/bench_train_step.py --gguf PATH [--batch 4] [--threads 2] [--warmup 3] \\
           [--steps 10] [--json OUT]
"""
import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench_hf_generate import current_rss_mib, log, peak_rss_mib
from reference_common import library_versions, load_gguf_model

PROMPT_IDS = list(range(1000, 1024))    # 24
QUESTION_IDS = list(range(2000, 2012))  # 12
ANSWER_IDS = list(range(3000, 3008))    # 8
INJECTED = 4                            # adapter vectors between prompt and question
FEATURE_DIM = 32
SEQ_LEN = len(PROMPT_IDS) + INJECTED + len(QUESTION_IDS) + len(ANSWER_IDS)  # 48
ANSWER_START = SEQ_LEN - len(ANSWER_IDS)  # 40: hidden states at 39..46 predict the answer at 40..47


class TrainStep:
    """Everything one step needs, fixed at construction; run() performs and times one optimiser step."""

    def __init__(self, model, batch: int):
        self.model = model
        hidden = model.config.hidden_size
        torch.manual_seed(0)
        self.adapter = torch.nn.Linear(FEATURE_DIM, hidden)
        self.features = torch.randn(batch, INJECTED, FEATURE_DIM, generator=torch.Generator().manual_seed(1))
        rows = lambda ids: torch.tensor([ids] * batch, dtype=torch.long)  # noqa: E731  (B, n)
        self.prompt, self.question, self.answer = rows(PROMPT_IDS), rows(QUESTION_IDS), rows(ANSWER_IDS)
        self.attention_mask = torch.ones(batch, SEQ_LEN, dtype=torch.long)
        self.position_ids = torch.arange(SEQ_LEN).unsqueeze(0).expand(batch, SEQ_LEN)
        self.optimizer = torch.optim.AdamW(self.adapter.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-8,
                                           weight_decay=0.05)

    def forward(self) -> torch.Tensor:
        embed = self.model.model.embed_tokens
        inputs_embeds = torch.cat(
            [embed(self.prompt), self.adapter(self.features), embed(self.question), embed(self.answer)], dim=1)
        hidden = self.model.model(inputs_embeds=inputs_embeds, attention_mask=self.attention_mask,
                                  position_ids=self.position_ids, use_cache=False).last_hidden_state  # (B, T, H)
        logits = self.model.lm_head(hidden[:, ANSWER_START - 1:SEQ_LEN - 1])  # (B, 8, vocab)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), self.answer.reshape(-1))

    def run(self) -> dict:
        start = time.perf_counter()
        self.optimizer.zero_grad()
        forward_start = time.perf_counter()
        loss = self.forward()
        backward_start = time.perf_counter()
        loss.backward()
        optimizer_start = time.perf_counter()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.adapter.parameters(), 1.0)
        self.optimizer.step()
        end = time.perf_counter()
        return {"step": end - start, "forward": backward_start - forward_start,
                "backward": optimizer_start - backward_start, "optimizer": end - optimizer_start,
                "loss": loss.item(), "grad_norm": grad_norm.item()}


def median_ms(steps: list[dict], key: str) -> float:
    return 1000.0 * statistics.median(step[key] for step in steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", required=True, help="path to the SmolLM2-135M-Instruct GGUF checkpoint")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--json", help="also write the JSON result to this file")
    arguments = parser.parse_args()
    if arguments.batch < 1 or arguments.steps < 1 or arguments.warmup < 0:
        parser.error("--batch and --steps must be at least 1, --warmup at least 0")
    torch.set_num_threads(arguments.threads)

    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the result
        load_start = time.perf_counter()
        model = load_gguf_model(arguments.gguf, "sdpa")
        model.requires_grad_(False)
        model.eval()
        load_seconds = time.perf_counter() - load_start
        rss_after_load = current_rss_mib()
        trainer = TrainStep(model, arguments.batch)

        warmup, timed = [], []
        for index in range(arguments.warmup + arguments.steps):
            result = trainer.run()
            (warmup if index < arguments.warmup else timed).append(result)
            log(f"{'warm-up' if index < arguments.warmup else 'step'} {index}: {1000 * result['step']:.1f} ms "
                f"(forward {1000 * result['forward']:.1f}, backward {1000 * result['backward']:.1f}, "
                f"optimizer {1000 * result['optimizer']:.2f}) loss {result['loss']:.6f} "
                f"grad norm {result['grad_norm']:.6f}")

    every = warmup + timed
    result = {
        "engine": "pytorch-eager",
        "model": Path(arguments.gguf).name,
        "dtype": "float32",
        "attn_implementation": model.config._attn_implementation,
        "device": "cpu",
        "batch": arguments.batch,
        "seq_len": SEQ_LEN,
        "threads": arguments.threads,
        "warmup": arguments.warmup,
        "steps": arguments.steps,
        "trainable_parameters": sum(parameter.numel() for parameter in trainer.adapter.parameters()),
        "frozen_parameters": sum(parameter.numel() for parameter in model.parameters()),
        "load_seconds": load_seconds,
        "step_ms_median": median_ms(timed, "step"),
        "step_ms_min": 1000.0 * min(step["step"] for step in timed),
        "forward_ms_median": median_ms(timed, "forward"),
        "backward_ms_median": median_ms(timed, "backward"),
        "optimizer_ms_median": median_ms(timed, "optimizer"),
        "loss_first": every[0]["loss"],
        "loss_last": every[-1]["loss"],
        "losses": [step["loss"] for step in every],
        "grad_norms": [step["grad_norm"] for step in every],
        "per_step_ms": [1000.0 * step["step"] for step in timed],
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
