"""Helpers shared by the reference scripts: load a GGUF checkpoint in transformers, record library versions,
write fixture files. Nothing here is run by the Java build; the scripts that import it say which test reads
what they write."""
import json
import platform
import re
from importlib.metadata import version
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_ROOT = REPO_ROOT / "src" / "test" / "resources" / "fixtures" / "llm"
MAX_FIXTURE_BYTES = 5_000_000  # every committed fixture file stays under this


def library_versions() -> dict:
    packages = ["torch", "transformers", "tokenizers", "gguf", "safetensors", "numpy"]
    return {"python": platform.python_version(), **{name: version(name) for name in packages}}


def load_gguf_tokenizer(gguf_path: str):
    path = Path(gguf_path).resolve()
    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def load_gguf_model(gguf_path: str, attn_implementation: str):
    """Dequantises every GGUF tensor to fp32, exactly as transformers does; that is the reference."""
    path = Path(gguf_path).resolve()
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32, attn_implementation=attn_implementation)
    return model.eval()


NUMBER_LIST = re.compile(r"\[\s*(-?[0-9][-+0-9.eE]*(?:,\s*-?[0-9][-+0-9.eE]*)*)\s*\]")


def write_json(path: Path, value) -> None:
    """Indented JSON, UTF-8 kept readable, with lists of numbers (token ids) on one line each."""
    text = json.dumps(value, ensure_ascii=False, indent=1)
    text = NUMBER_LIST.sub(lambda match: "[" + ", ".join(re.split(r",\s*", match.group(1))) + "]", text)
    path.write_text(text + "\n", encoding="utf-8")
    check_size(path)


def write_tensors(path: Path, tensors: dict) -> None:
    """Stores fp32 / int64 tensors, contiguous, under the given keys."""
    save_file({key: tensor.detach().contiguous() for key, tensor in tensors.items()}, str(path))
    check_size(path)


def check_size(path: Path) -> None:
    size = path.stat().st_size
    if size >= MAX_FIXTURE_BYTES:
        raise RuntimeError(f"{path} is {size} bytes; fixtures must stay under {MAX_FIXTURE_BYTES}")
