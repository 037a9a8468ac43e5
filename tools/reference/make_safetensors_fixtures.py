"""Writes safetensors fixtures with the reference `safetensors` package for SafetensorsTest.

Produces src/test/resources/fixtures/safetensors/:
  dtypes.safetensors           one tensor per dtype (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL) + __metadata__
  sharded/model-0000{1,2}-of-00002.safetensors + model.safetensors.index.json
  expected.json                every tensor's values as float (bf16/f16 widened exactly)
Run: tools/reference/.venv/bin/python tools/reference/make_safetensors_fixtures.py
"""
import json
import pathlib

import torch
from safetensors.torch import save_file

out = pathlib.Path(__file__).resolve().parents[2] / "src/test/resources/fixtures/safetensors"
(out / "sharded").mkdir(parents=True, exist_ok=True)
g = torch.Generator().manual_seed(7)
base = torch.randn(3, 5, generator=g) * 3
tensors = {
    "f64": base.double(),
    "f32": base.clone(),
    "f16": base.half(),
    "bf16": base.bfloat16(),
    "i64": (base * 1000).long(),
    "i32": (base * 100).int(),
    "i16": (base * 10).short(),
    "i8": (base * 10).to(torch.int8),
    "u8": (base.abs() * 20).to(torch.uint8),
    "bool": base > 0,
    "scalar": torch.tensor(2.5),
    "empty": torch.zeros(0, 4),
}
save_file(tensors, out / "dtypes.safetensors", metadata={"format": "pt", "note": "xllm fixture"})
expected = {k: {"shape": list(v.shape), "values": v.double().flatten().tolist()} for k, v in tensors.items()}

shard1 = {"model.layers.0.weight": torch.randn(4, 6, generator=g), "model.embed.weight": torch.randn(10, 4, generator=g)}
shard2 = {"model.layers.1.weight": torch.randn(4, 6, generator=g), "lm_head.weight": torch.randn(10, 4, generator=g)}
save_file(shard1, out / "sharded/model-00001-of-00002.safetensors")
save_file(shard2, out / "sharded/model-00002-of-00002.safetensors")
weight_map = {k: "model-00001-of-00002.safetensors" for k in shard1}
weight_map.update({k: "model-00002-of-00002.safetensors" for k in shard2})
(out / "sharded/model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}, indent=1))
for k, v in {**shard1, **shard2}.items():
    expected["sharded/" + k] = {"shape": list(v.shape), "values": v.double().flatten().tolist()}
(out / "expected.json").write_text(json.dumps(expected))
print("wrote", out)
