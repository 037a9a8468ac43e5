"""Writes the reference trajectories for xllm.train (AdamWTest, LrScheduleTest) with PyTorch itself.

Produces src/test/resources/fixtures/train/:
  adamw.json      3 parameters (proj.weight (4,3), proj.bias (3,), query_tokens (2,5)), 12 seeded gradient sets,
                  torch.optim.AdamW with two groups (weight decay 0.05 / 0.0), betas (0.9, 0.98), eps 1e-8,
                  torch.nn.utils.clip_grad_norm_(params, 1.0) before every step (steps 2, 5, 8, 11 have large
                  gradients so they clip), learning rates from the warm-up cosine schedule below.
                  Per step: lr, grad norm returned by clip_grad_norm_, the gradients fed in and the parameters after
                  the step. All tensors float32; values written as the exact doubles of the float32 numbers.
  schedules.json  warm-up cosine and tri-stage learning rates for steps 0..44, from direct transcriptions of
                  LAVIS lavis/common/optims.py and fairseq fairseq/optim/lr_scheduler/tri_stage_lr_scheduler.py.
Run: /tmp/refvenv/bin/python tools/reference/make_optim_fixtures.py   (torch 2.x; any CPU build)
"""
import json
import math
import pathlib

import torch

out = pathlib.Path(__file__).resolve().parents[2] / "src/test/resources/fixtures/train"
out.mkdir(parents=True, exist_ok=True)


# --- LAVIS lavis/common/optims.py, function bodies verbatim -------------------------------------------------------
def lavis_warmup_lr(step, max_step, init_lr, max_lr):
    return min(max_lr, init_lr + (max_lr - init_lr) * step / max(max_step, 1))


def lavis_cosine_lr(epoch, max_epoch, init_lr, min_lr):
    return (init_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * epoch / max_epoch)) + min_lr


def warmup_cosine(step, init_lr, min_lr, warmup_start_lr, warmup_steps, total_steps):
    """xllm's per-step reading: LAVIS warm-up for steps < W, then LAVIS cosine with epoch = step - W,
    max_epoch = T - W; min_lr from T on."""
    if step < warmup_steps:
        return lavis_warmup_lr(step, warmup_steps, warmup_start_lr, init_lr)
    if step >= total_steps:
        return min_lr
    return lavis_cosine_lr(step - warmup_steps, total_steps - warmup_steps, init_lr, min_lr)


# --- fairseq TriStageLRSchedule: __init__ + _decide_stage + step_update, transcribed ------------------------------
class TriStage:
    def __init__(self, lr, init_lr_scale, final_lr_scale, warmup_steps, hold_steps, decay_steps):
        self.peak_lr = lr
        self.init_lr = init_lr_scale * lr
        self.final_lr = final_lr_scale * lr
        self.warmup_steps = warmup_steps
        self.hold_steps = hold_steps
        self.decay_steps = decay_steps
        self.warmup_rate = (self.peak_lr - self.init_lr) / self.warmup_steps if self.warmup_steps != 0 else 0
        self.decay_factor = -math.log(final_lr_scale) / decay_steps

    def _decide_stage(self, update_step):
        if update_step < self.warmup_steps:
            return 0, update_step
        offset = self.warmup_steps
        if update_step < offset + self.hold_steps:
            return 1, update_step - offset
        offset += self.hold_steps
        if update_step <= offset + self.decay_steps:
            return 2, update_step - offset
        offset += self.decay_steps
        return 3, update_step - offset

    def step_update(self, num_updates):
        stage, steps_in_stage = self._decide_stage(num_updates)
        if stage == 0:
            return self.init_lr + self.warmup_rate * steps_in_stage
        if stage == 1:
            return self.peak_lr
        if stage == 2:
            return self.peak_lr * math.exp(-self.decay_factor * steps_in_stage)
        return self.final_lr


def floats(t):
    return [float(x) for x in t.detach().flatten().tolist()]


# --- schedules ---------------------------------------------------------------------------------------------------
cosine_cfg = dict(init_lr=1e-4, min_lr=1e-5, warmup_start_lr=1e-6, warmup_steps=10, total_steps=40)
tri_cfg = dict(peak_lr=1e-3, warmup_steps=8, hold_steps=10, decay_steps=15, final_lr=1e-5)
tri = TriStage(tri_cfg["peak_lr"], 0.0, tri_cfg["final_lr"] / tri_cfg["peak_lr"],
               tri_cfg["warmup_steps"], tri_cfg["hold_steps"], tri_cfg["decay_steps"])
steps = list(range(45))
schedules = {
    "warmup_cosine": {"config": cosine_cfg, "steps": steps, "lr": [warmup_cosine(s, **cosine_cfg) for s in steps]},
    "tri_stage": {"config": tri_cfg, "steps": steps, "lr": [tri.step_update(s) for s in steps]},
}
(out / "schedules.json").write_text(json.dumps(schedules, indent=1) + "\n")

# --- AdamW trajectory --------------------------------------------------------------------------------------------
gen = torch.Generator().manual_seed(20240611)
names = ["proj.weight", "proj.bias", "query_tokens"]
shapes = {"proj.weight": (4, 3), "proj.bias": (3,), "query_tokens": (2, 5)}
params = {n: torch.randn(*shapes[n], generator=gen).requires_grad_(True) for n in names}
initial = {n: floats(p) for n, p in params.items()}

optim_cfg = dict(betas=(0.9, 0.98), eps=1e-8, weight_decay=0.05, max_norm=1.0)
lr_cfg = dict(init_lr=1e-2, min_lr=1e-3, warmup_start_lr=1e-3, warmup_steps=3, total_steps=12)
optimizer = torch.optim.AdamW(
    [{"params": [params["proj.weight"]], "weight_decay": optim_cfg["weight_decay"]},
     {"params": [params["proj.bias"], params["query_tokens"]], "weight_decay": 0.0}],
    lr=lr_cfg["init_lr"], betas=optim_cfg["betas"], eps=optim_cfg["eps"])

records = []
for step in range(12):
    scale = 3.0 if step % 3 == 2 else 0.1  # every third step clips; the others stay under max_norm
    grads = {n: torch.randn(*shapes[n], generator=gen) * scale for n in names}
    for n in names:
        params[n].grad = grads[n].clone()
    norm = torch.nn.utils.clip_grad_norm_(list(params.values()), optim_cfg["max_norm"])
    lr = warmup_cosine(step, **lr_cfg)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    records.append({
        "step": step, "lr": lr, "grad_norm": float(norm), "clipped": bool(float(norm) > optim_cfg["max_norm"]),
        "grads": {n: floats(g) for n, g in grads.items()},
        "params": {n: floats(p) for n, p in params.items()},
    })

state = optimizer.state
adamw = {
    "torch": torch.__version__,
    "optimizer": optim_cfg, "schedule": lr_cfg, "names": names,
    "shapes": {n: list(s) for n, s in shapes.items()},
    "decays": {"proj.weight": True, "proj.bias": False, "query_tokens": False},
    "initial": initial, "steps": records,
    "final_state": {n: {"exp_avg": floats(state[params[n]]["exp_avg"]), "exp_avg_sq": floats(state[params[n]]["exp_avg_sq"]),
                        "step": float(state[params[n]]["step"])} for n in names},
}
(out / "adamw.json").write_text(json.dumps(adamw, indent=1) + "\n")
print("clipped steps:", [r["step"] for r in records if r["clipped"]])
