"""Writes fixtures/ctc/ctc_reference.json for xllm.speech.CtcLossTest: torch.nn.functional.ctc_loss on random
logits (float64), reduction='mean' (each row's loss divided by its target length, then averaged over the batch),
zero_infinity=True, blank = C - 1, and the gradient of that loss with respect to the logits (before log_softmax).
Cases: mixed lengths with repeated labels, and a batch whose second row cannot be aligned (zeroed by zero_infinity).
Run: /tmp/refvenv/bin/python tools/reference/make_ctc_fixtures.py
"""
import json
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parents[2] / "src/test/resources/fixtures/ctc/ctc_reference.json"


def case(name, lengths, targets, classes, seed):
    g = torch.Generator().manual_seed(seed)
    batch, frames = len(lengths), max(lengths)
    logits = torch.randn(batch, frames, classes, generator=g, dtype=torch.float64, requires_grad=True)
    log_probs = logits.log_softmax(-1).transpose(0, 1)  # (T, B, C)
    flat = torch.tensor([i for t in targets for i in t], dtype=torch.long)
    loss = torch.nn.functional.ctc_loss(log_probs, flat, torch.tensor(lengths), torch.tensor([len(t) for t in targets]),
                                        blank=classes - 1, reduction="mean", zero_infinity=True)
    loss.backward()
    grad = logits.grad.clone()
    for b, n in enumerate(lengths):  # padded frames get no gradient; make that explicit
        grad[b, n:] = 0
    return {"name": name, "lengths": lengths, "targets": targets, "classes": classes,
            "logits": {"shape": list(logits.shape), "data": logits.detach().flatten().tolist()},
            "loss": loss.item(), "grad": {"shape": list(grad.shape), "data": grad.flatten().tolist()}}


def main():
    OUT.parent.mkdir(parents=True, exist_ok=True)
    cases = [
        case("mixed", [12, 9, 6], [[1, 1, 2, 3], [0, 4, 0], [2, 2]], 6, 1),
        case("infeasible_row", [10, 3], [[3, 1, 0], [1, 1, 1]], 5, 2),
    ]
    OUT.write_text(json.dumps({"torch": torch.__version__, "cases": cases}))


if __name__ == "__main__":
    main()
