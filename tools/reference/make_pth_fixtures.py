"""Writes the torch.save() fixtures that xllm.tensor.pickle.TorchCheckpointTest reads.

Run with a Python that has torch and numpy (from the repository root):
    python tools/reference/make_pth_fixtures.py

Outputs (src/test/resources/fixtures/pth/):
  tensors_protocol2.pth  torch.save default (zip, pickle protocol 2, archive folder = file stem)
  tensors_protocol4.pth  pickle protocol 4 (FRAME, STACK_GLOBAL, MEMOIZE), saved through BytesIO (folder "archive")
  tensors_protocol5.pth  pickle protocol 5
  tensors_legacy.pth     legacy non-zip format (_use_new_zipfile_serialization=False)
  tensors_expected.json  what all four hold: key order, dtype, shape, contiguous little-endian bytes, float values
  nested.pth / nested_expected.json   {"state_dict": ..., "epoch": ..., "ema": [...], ...} flattened with "."
  evil_*.pth             pickles that run a command through __reduce__; each is checked here to really create its
                         marker file (relative to the working directory) when torch.load(weights_only=False) runs it,
                         so the Java test proves a live payload was refused.
"""
import collections
import io
import json
import os
import pathlib
import subprocess
import tempfile
import time

import torch

OUT = pathlib.Path(__file__).resolve().parents[2] / "src/test/resources/fixtures/pth"

DTYPE_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


class TinyModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.norm = torch.nn.BatchNorm1d(3)
        self.embedding = torch.nn.Embedding(5, 4)


def make_state_dict():
    torch.manual_seed(1234)
    model = TinyModel()
    model.norm.running_mean.normal_()
    model.norm.num_batches_tracked.fill_(17)
    state = model.state_dict()  # OrderedDict carrying a _metadata attribute (pickled through BUILD)
    state["extra.f16"] = torch.randn(3, 4).half()
    state["extra.bf16"] = torch.randn(5).bfloat16()
    state["extra.f64"] = torch.randn(2, 2).double()
    state["extra.i64"] = torch.tensor([-(2 ** 40), 3, 2 ** 62 + 1], dtype=torch.int64)
    state["extra.i32"] = torch.tensor([[-(2 ** 31), 7], [2 ** 31 - 1, 0]], dtype=torch.int32)
    state["extra.i16"] = torch.tensor([-32768, 12345, 32767], dtype=torch.int16)
    state["extra.i8"] = torch.tensor([-128, -1, 0, 127], dtype=torch.int8)
    state["extra.u8"] = torch.tensor([0, 1, 255], dtype=torch.uint8)
    state["extra.bool"] = torch.tensor([True, False, False, True, True])
    base = torch.randn(4, 6)
    state["views.base"] = base
    state["views.transposed"] = base.t()              # shares base's storage, stride (1, 6)
    state["views.rows"] = base[1:3]                    # contiguous at storage offset 6
    state["views.column_step"] = base[:, 1::2]         # offset 1, stride (6, 2)
    state["views.expanded"] = torch.randn(1, 3).expand(4, 3)  # stride (0, 1): one row repeated
    state["views.permuted"] = torch.randn(2, 3, 4).permute(2, 0, 1)
    state["views.tail_only"] = torch.randn(10)[7:]     # the whole 10-element storage is saved
    state["views.half_transposed"] = torch.randn(3, 2).half().t()
    state["empty"] = torch.zeros(0, 3)
    state["scalar"] = torch.tensor(3.5)
    state["tied"] = model.linear.weight                # same tensor object as linear.weight
    return state


def make_nested():
    torch.manual_seed(99)
    inner = collections.OrderedDict()
    inner["encoder.weight"] = torch.randn(2, 3)
    inner["encoder.bias"] = torch.randn(2).bfloat16()
    return {
        "state_dict": inner,
        "epoch": 7,
        "arch": "tiny",
        "config": {"lr": 0.5, "betas": (0.9, 0.99), "flag": None, "ok": True},
        "ema": [torch.randn(3), torch.randn(2, 2).t()],
        "step": torch.tensor(5),
    }


def flatten(value, prefix, out):
    if isinstance(value, torch.Tensor):
        out[prefix] = value
    elif isinstance(value, dict):
        for key, item in value.items():
            flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            flatten(item, f"{prefix}.{index}", out)
    return out


def describe(tensors):
    described = []
    for name, tensor in tensors.items():
        dense = tensor.detach().clone(memory_format=torch.contiguous_format).reshape(-1)
        entry = {
            "name": name,
            "dtype": DTYPE_NAMES[tensor.dtype],
            "shape": list(tensor.shape),
            "hex": bytes(dense.view(torch.uint8).tolist()).hex(),
        }
        if tensor.is_floating_point():
            entry["values"] = dense.float().tolist()
        described.append(entry)
    return described


def check_round_trip(path, expected):
    # weights_only=False because torch's own restricted unpickler refuses FRAME (protocol 4+); these files are ours.
    loaded = flatten(torch.load(path, weights_only=False), "", collections.OrderedDict())
    assert list(loaded) == list(expected), (path, list(loaded))
    for name, tensor in expected.items():
        assert torch.equal(loaded[name], tensor), (path, name)


def save_bytes_io(obj, path, **kwargs):
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    path.write_bytes(buffer.getvalue())


class Payload:
    """Pickles as a call of `function(*arguments)`: what a malicious checkpoint hides inside a state dict."""

    def __init__(self, function, arguments):
        self.function, self.arguments = function, arguments

    def __reduce__(self):
        return self.function, self.arguments


EVIL = {
    "evil_os_system_protocol2": (os.system, ("touch xllm-pth-marker-os-system-protocol2",), 2),
    "evil_os_system_protocol4": (os.system, ("touch xllm-pth-marker-os-system-protocol4",), 4),
    "evil_eval": (eval, ("__import__('os').system('touch xllm-pth-marker-eval')",), 2),
    "evil_popen": (subprocess.Popen, (["touch", "xllm-pth-marker-popen"],), 2),
}


def write_evil(name, function, arguments, protocol):
    path = OUT / f"{name}.pth"
    payload = {"weight": torch.ones(2), "bias": Payload(function, arguments)}
    torch.save(payload, path, pickle_protocol=protocol)
    marker_name = (arguments[0] if isinstance(arguments[0], list) else arguments[0].split())[-1].rstrip("')")
    with tempfile.TemporaryDirectory() as scratch:
        old = os.getcwd()
        os.chdir(scratch)
        try:
            try:
                torch.load(path, weights_only=True)
                raise AssertionError(f"{name}: weights_only=True accepted the payload")
            except Exception as refused:  # pickle.UnpicklingError in torch>=2.4
                assert "weights_only" in str(refused) or "Unsupported" in str(refused), refused
            torch.load(path, weights_only=False)
            for _ in range(50):  # Popen runs touch asynchronously
                if pathlib.Path(marker_name).exists():
                    break
                time.sleep(0.05)
            assert pathlib.Path(marker_name).exists(), f"{name}: payload did not create {marker_name}"
        finally:
            os.chdir(old)
    return marker_name


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    state = make_state_dict()
    expected = flatten(state, "", collections.OrderedDict())

    torch.save(state, OUT / "tensors_protocol2.pth")
    save_bytes_io(state, OUT / "tensors_protocol4.pth", pickle_protocol=4)
    save_bytes_io(state, OUT / "tensors_protocol5.pth", pickle_protocol=5)
    torch.save(state, OUT / "tensors_legacy.pth", _use_new_zipfile_serialization=False)
    for name in ["tensors_protocol2", "tensors_protocol4", "tensors_protocol5", "tensors_legacy"]:
        check_round_trip(OUT / f"{name}.pth", expected)
    (OUT / "tensors_expected.json").write_text(json.dumps({"tensors": describe(expected)}, indent=1) + "\n")

    nested = make_nested()
    torch.save(nested, OUT / "nested.pth")
    nested_expected = flatten(nested, "", collections.OrderedDict())
    check_round_trip(OUT / "nested.pth", nested_expected)
    (OUT / "nested_expected.json").write_text(json.dumps({"tensors": describe(nested_expected)}, indent=1) + "\n")

    for name, (function, arguments, protocol) in EVIL.items():
        marker = write_evil(name, function, arguments, protocol)
        print(f"{name}.pth: payload verified live (creates {marker})")

    for path in sorted(OUT.iterdir()):
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
