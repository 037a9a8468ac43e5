"""Makes the LLM parity fixtures under src/test/resources/fixtures/llm/.

  tiny-llama/, tiny-qwen2/   tiny random checkpoints (config.json, model.safetensors, tokenizer.json,
                             tokenizer_config.json) with a byte-level BPE tokenizer trained on
                             tokenizer_corpus.txt, plus their reference outputs.
  smollm2-135m-instruct/     reference outputs of SmolLM2-135M-Instruct read from the GGUF given on the
                             command line (the weights themselves are never written), the tokenizer that
                             transformers builds from that GGUF, and dequantised weight slices.

Each model folder gets reference.json (prompts, input ids, logits file names, greedy continuations, chat
template renderings, versions) and logits_<k>.safetensors (key "logits", fp32, shape (positions, vocab)).
Consumed by the Java LLM parity tests (forward logits, greedy decoding, chat template, checkpoint loading)
under src/test/java/xllm/llm/.

Usage: python tools/reference/make_llm_fixtures.py PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast,
                          Qwen2Config, Qwen2ForCausalLM)

from reference_common import (FIXTURE_ROOT, MAX_FIXTURE_BYTES, library_versions, load_gguf_model,
                              load_gguf_tokenizer, write_json, write_tensors)

CORPUS = Path(__file__).resolve().parent / "tokenizer_corpus.txt"
PROMPTS = ["The capital of France is", "def fibonacci(n):", "你好，世界！ Hello 🌍"]
NEW_TOKENS = 32
# Fixtures use eager attention: softmax(q k^T / sqrt(d) + mask) v written out, the form the Java side mirrors.
ATTENTION = "eager"
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2
TINY_VOCAB = 512
TINY_SEED = 1234
TINY_WEIGHT_STD = 0.2  # well above the usual 0.02 so that logits are far from flat


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- tiny models

def train_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE (GPT-2 style: ByteLevel pre-tokenizer with its regex, ByteLevel decoder) on the corpus."""
    lines = CORPUS.read_text(encoding="utf-8").split("\n")[:-1]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TINY_VOCAB, min_frequency=2, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(lines, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", chat_template=CHATML_TEMPLATE,
                                   model_max_length=256)


def tiny_llama_config(vocab_size: int) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=160, tie_word_embeddings=False, rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 64},
        rms_norm_eps=1e-5, max_position_embeddings=256, initializer_range=TINY_WEIGHT_STD,
        bos_token_id=1, eos_token_id=2, pad_token_id=0, dtype="float32")


def tiny_qwen2_config(vocab_size: int) -> Qwen2Config:
    return Qwen2Config(
        vocab_size=vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=128, tie_word_embeddings=True, rope_theta=10000.0, rms_norm_eps=1e-6,
        max_position_embeddings=256, initializer_range=TINY_WEIGHT_STD, use_sliding_window=False,
        bos_token_id=1, eos_token_id=2, pad_token_id=0, dtype="float32")


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Every parameter drawn from one seeded generator in name order, independent of HF's init code:
    matrices and biases ~ N(0, 0.2); RMSNorm gains ~ 1 + N(0, 0.1) so a missing gain is caught."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            noise = torch.randn(parameter.shape, generator=generator)
            if name.endswith("norm.weight"):
                parameter.copy_(1.0 + 0.1 * noise)
            else:
                parameter.copy_(TINY_WEIGHT_STD * noise)


def build_tiny_model(model_class, config, seed: int):
    model = model_class(config)
    randomise(model, seed)
    model.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model.config._attn_implementation = ATTENTION
    return model.eval()


# ---------------------------------------------------------------------------------------------- reference outputs

def greedy(model, tokenizer, input_ids: list[int]) -> dict:
    """32-token greedy continuation with the KV cache, as model.generate does it."""
    prompt = torch.tensor([input_ids])
    output = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                            max_new_tokens=NEW_TOKENS, output_scores=True, return_dict_in_generate=True)
    new_ids = output.sequences[0, len(input_ids):].tolist()
    # top-1 minus top-2 logit per step: a near tie there is where an fp32 implementation may legitimately diverge
    margins = [float(top[0] - top[1]) for top in (step[0].topk(2).values for step in output.scores)]
    eos = model.generation_config.eos_token_id
    return {
        "max_new_tokens": NEW_TOKENS,
        "ids": new_ids,
        "text": tokenizer.decode(new_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False),
        "stopped_by_eos": len(new_ids) < NEW_TOKENS and new_ids[-1] == eos,
        "eos_token_id": eos,
        "min_top2_logit_margin": min(margins),
        "min_margin_step": margins.index(min(margins)),
    }


def logits_positions(sequence_length: int, vocab_size: int) -> list[int]:
    """All positions if they fit one fixture file, otherwise the last 4."""
    if sequence_length * vocab_size * 4 + 1024 < MAX_FIXTURE_BYTES:
        return list(range(sequence_length))
    return list(range(sequence_length - 4, sequence_length))


@torch.no_grad()
def prompt_fixtures(model, tokenizer, out_dir: Path) -> list[dict]:
    entries = []
    for index, text in enumerate(PROMPTS):
        input_ids = tokenizer.encode(text, add_special_tokens=False)
        logits = model(torch.tensor([input_ids])).logits[0]  # (T, V)
        positions = logits_positions(len(input_ids), logits.shape[-1])
        file_name = f"logits_{index}.safetensors"
        write_tensors(out_dir / file_name, {"logits": logits[positions]})
        entries.append({
            "text": text,
            "input_ids": input_ids,
            "tokens": tokenizer.convert_ids_to_tokens(input_ids),
            "logits_file": file_name,
            "logits_positions": positions,
            "argmax_per_position": logits.argmax(-1).tolist(),
            "greedy": greedy(model, tokenizer, input_ids),
        })
        log(f"  prompt {index}: {len(input_ids)} ids -> {entries[-1]['greedy']['text']!r}")
    return entries


@torch.no_grad()
def padded_batch_fixture(model, tokenizer, out_dir: Path) -> dict:
    """Two prompts of different lengths, left-padded into one batch; each row must equal its prompt run alone."""
    texts = ["Hello", "The quick brown fox jumps over the lazy dog."]
    saved_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    batch = tokenizer(texts, padding=True, add_special_tokens=False, return_tensors="pt")
    tokenizer.padding_side = saved_side
    attention_mask = batch["attention_mask"]  # (2, T), 0 on the left padding
    # positions count real tokens only (what generate() does); pad slots get position 1 by HF convention
    position_ids = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)
    batch_logits = model(input_ids=batch["input_ids"], attention_mask=attention_mask,
                         position_ids=position_ids).logits  # (2, T, V)
    tensors = {"input_ids": batch["input_ids"], "attention_mask": attention_mask, "position_ids": position_ids,
               "logits": batch_logits}
    max_difference = 0.0
    for row, text in enumerate(texts):
        alone_ids = tokenizer.encode(text, add_special_tokens=False)
        alone_logits = model(torch.tensor([alone_ids])).logits[0]  # (T_row, V)
        tensors[f"logits_alone_{row}"] = alone_logits
        valid = attention_mask[row].bool()
        max_difference = max(max_difference, (batch_logits[row][valid] - alone_logits).abs().max().item())
    if max_difference > 1e-4:
        raise RuntimeError(f"padded batch differs from single prompts by {max_difference}")
    write_tensors(out_dir / "batch_logits.safetensors", tensors)
    log(f"  padded batch: max |batch - alone| = {max_difference:.3g}")
    return {
        "texts": texts,
        "padding_side": "left",
        "pad_token_id": tokenizer.pad_token_id,
        "file": "batch_logits.safetensors",
        "keys": {"input_ids": "int64 (2, T)", "attention_mask": "int64 (2, T), 1 = real token",
                 "position_ids": "int64 (2, T), cumsum(mask) - 1, pad slots set to 1",
                 "logits": "fp32 (2, T, V); rows at padded slots are meaningless, compare where mask == 1",
                 "logits_alone_<row>": "fp32 (T_row, V), the prompt run alone without padding"},
        "max_abs_difference_batch_vs_alone": max_difference,
    }


def tokenizer_summary(tokenizer) -> dict:
    return {"files": ["tokenizer.json", "tokenizer_config.json"], "vocab_size": len(tokenizer),
            "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id, "add_special_tokens_in_fixtures": False}


def make_tiny(name: str, model_class, config_builder, tokenizer, seed: int, with_batch: bool) -> None:
    log(f"{name}:")
    out_dir = FIXTURE_ROOT / name
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = build_tiny_model(model_class, config_builder(len(tokenizer)), seed)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir, save_jinja_files=False)  # keeps chat_template inside tokenizer_config.json
    reference = {
        "model": name,
        "architecture": type(model).__name__,
        "source": f"random weights, seed {seed}, matrices and biases N(0, {TINY_WEIGHT_STD}), "
                  "norm gains 1 + N(0, 0.1); see tools/reference/make_llm_fixtures.py",
        "dtype": "float32",
        "attn_implementation": ATTENTION,
        "tokenizer": tokenizer_summary(tokenizer),
        "prompts": prompt_fixtures(model, tokenizer, out_dir),
        "versions": library_versions(),
    }
    if with_batch:
        reference["padded_batch"] = padded_batch_fixture(model, tokenizer, out_dir)
    check_reload(out_dir, model_class, reference["prompts"][0])
    write_json(out_dir / "reference.json", reference)


@torch.no_grad()
def check_reload(out_dir: Path, model_class, prompt: dict) -> None:
    """The committed folder alone must reproduce the fixture: same ids from the saved tokenizer, same logits."""
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    model = model_class.from_pretrained(out_dir, dtype=torch.float32, attn_implementation=ATTENTION).eval()
    if tokenizer.encode(prompt["text"], add_special_tokens=False) != prompt["input_ids"]:
        raise RuntimeError(f"{out_dir}: saved tokenizer gives different ids")
    expected = load_file(str(out_dir / prompt["logits_file"]))["logits"]
    if not torch.equal(model(torch.tensor([prompt["input_ids"]])).logits[0], expected):
        raise RuntimeError(f"{out_dir}: reloaded checkpoint gives different logits")


# ---------------------------------------------------------------------------------------------- SmolLM2

CHAT_ONE_TURN = [{"role": "user", "content": "What is the capital of France?"}]
CHAT_THREE_TURNS = [
    {"role": "system", "content": "You are a concise geography tutor."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
]
# (HF name, GGUF name, rows kept): one Q8_0 tensor, one head of the Q4_1 q/k projections (transformers undoes
# llama.cpp's rotary row permutation of q/k, so these rows test that too), one Q4_1 down projection, F32 norms.
WEIGHT_SLICES = [
    ("model.embed_tokens.weight", "token_embd.weight", (0, 8)),
    ("model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight", (0, 64)),
    ("model.layers.0.self_attn.k_proj.weight", "blk.0.attn_k.weight", (0, 64)),
    ("model.layers.0.mlp.down_proj.weight", "blk.0.ffn_down.weight", (0, 4)),
    ("model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight", None),
    ("model.norm.weight", "output_norm.weight", None),
]


def chat_rendering(tokenizer, messages, add_generation_prompt: bool) -> dict:
    return {
        "messages": messages,
        "add_generation_prompt": add_generation_prompt,
        "text": tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt,
                                              tokenize=False),
        "input_ids": tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt),
    }


def dump_gguf_tokenizer(tokenizer, out_dir: Path) -> str:
    """The backend tokenizer transformers builds from the GGUF, whole if small enough, else its non-vocab parts."""
    whole = tokenizer.backend_tokenizer.to_str()
    if len(whole.encode("utf-8")) < MAX_FIXTURE_BYTES:
        (out_dir / "hf_tokenizer_from_gguf.json").write_text(whole, encoding="utf-8")
        return "hf_tokenizer_from_gguf.json"
    parsed = json.loads(whole)
    sections = {key: parsed[key] for key in
                ["normalizer", "pre_tokenizer", "post_processor", "decoder", "added_tokens"]}
    write_json(out_dir / "hf_tokenizer_from_gguf_sections.json", sections)
    return "hf_tokenizer_from_gguf_sections.json"


def weight_slices(model, out_dir: Path) -> dict:
    state = model.state_dict()
    tensors, described = {}, []
    for hf_name, gguf_name, rows in WEIGHT_SLICES:
        weight = state[hf_name]
        tensors[hf_name] = weight if rows is None else weight[rows[0]:rows[1]]
        described.append({"key": hf_name, "gguf_tensor": gguf_name, "hf_shape": list(weight.shape),
                          "rows": list(rows) if rows else None})
    write_tensors(out_dir / "weight_slices.safetensors", tensors)
    return {"file": "weight_slices.safetensors",
            "layout": "HF (out_features, in_features), fp32, bit-equal to gguf.dequantize of the GGUF tensor; "
                      "q/k rows are un-permuted: W.reshape(n_heads, head_dim / 2, 2, in).swapaxes(1, 2)"
                      ".reshape(out, in), with n_heads = 9 for q and 3 for k",
            "slices": described}


@torch.no_grad()
def make_smollm2(gguf_path: str) -> None:
    log("smollm2-135m-instruct:")
    out_dir = FIXTURE_ROOT / "smollm2-135m-instruct"
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = load_gguf_tokenizer(gguf_path)
    model = load_gguf_model(gguf_path, ATTENTION)

    one_turn = chat_rendering(tokenizer, CHAT_ONE_TURN, add_generation_prompt=True)
    chat_logits = model(torch.tensor([one_turn["input_ids"]])).logits[0]  # (T, V)
    last_positions = list(range(len(one_turn["input_ids"]) - 4, len(one_turn["input_ids"])))
    write_tensors(out_dir / "logits_chat.safetensors", {"logits": chat_logits[last_positions]})
    one_turn.update(logits_file="logits_chat.safetensors", logits_positions=last_positions,
                    greedy=greedy(model, tokenizer, one_turn["input_ids"]))
    log(f"  chat answer: {one_turn['greedy']['text']!r}")

    reference = {
        "model": "smollm2-135m-instruct",
        "architecture": type(model).__name__,
        "source": f"GGUF {Path(gguf_path).name} (Q4_1 matrices, Q8_0 embedding) loaded by transformers "
                  "with dtype=float32: every tensor dequantised to fp32; output head tied to the embedding",
        "dtype": "float32",
        "attn_implementation": ATTENTION,
        "config": {key: getattr(model.config, key) for key in
                   ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                    "intermediate_size", "rope_theta", "rms_norm_eps", "tie_word_embeddings",
                    "max_position_embeddings", "bos_token_id", "eos_token_id", "pad_token_id"]},
        "tokenizer": {
            "file": dump_gguf_tokenizer(tokenizer, out_dir),
            "class": type(tokenizer).__name__,
            "bos_token": tokenizer.bos_token, "eos_token": tokenizer.eos_token,
            "add_bos_token": getattr(tokenizer, "add_bos_token", None),
            "add_special_tokens_in_fixtures": False,
            "decode": "skip_special_tokens=False, clean_up_tokenization_spaces=False (HF's default for this "
                      "tokenizer is True, which would turn ' ?' into '?' and so on)",
            "note": "transformers builds a LlamaTokenizerFast whose post-processor prepends <|im_start|> (id 1) "
                    "when add_special_tokens=True, although the GGUF says add_bos_token=false; the fixtures "
                    "encode plain prompts with add_special_tokens=False, as llama.cpp would. Its eos_token "
                    "also reads <|im_start|> (converter quirk); generation stops on config eos_token_id 2.",
        },
        "prompts": prompt_fixtures(model, tokenizer, out_dir),
        "chat": {
            "template": tokenizer.chat_template,
            "one_turn": one_turn,
            "three_turns": chat_rendering(tokenizer, CHAT_THREE_TURNS, add_generation_prompt=False),
        },
        "weight_slices": weight_slices(model, out_dir),
        "versions": library_versions(),
    }
    write_json(out_dir / "reference.json", reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", help="path to SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--skip-smollm2", action="store_true", help="only rebuild the tiny models")
    arguments = parser.parse_args()
    torch.set_grad_enabled(False)

    tokenizer = train_tiny_tokenizer()
    log(f"tiny tokenizer: {len(tokenizer)} tokens")
    make_tiny("tiny-llama", LlamaForCausalLM, tiny_llama_config, tokenizer, TINY_SEED, with_batch=True)
    make_tiny("tiny-qwen2", Qwen2ForCausalLM, tiny_qwen2_config, tokenizer, TINY_SEED + 1, with_batch=False)
    if not arguments.skip_smollm2:
        make_smollm2(arguments.gguf)


if __name__ == "__main__":
    main()
