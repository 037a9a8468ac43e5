"""Makes the tokenizer parity fixtures: ids of every line of tokenizer_corpus.txt and their decoded text.

  fixtures/llm/smollm2-135m-instruct/tokenizer_ids.json   tokenizer transformers builds from the GGUF
  fixtures/llm/tiny-llama/tokenizer_ids.json              tiny-llama/tokenizer.json (run make_llm_fixtures first)

Ids come from tokenizer.encode(line, add_special_tokens=False); special tokens written literally in a line
(<|im_start|> ...) are still matched, as HF does. "decoded" is decode(ids, skip_special_tokens=False,
clean_up_tokenization_spaces=False). For SmolLM2 the file also lists the lines whose ids change under the
llama.cpp "smollm" pre-tokenizer (single digits split off before the GPT-2 regex), which transformers does
not apply. Consumed by the Java tokenizer parity tests under src/test/java/xllm/llm/.

Usage: python tools/reference/make_tokenizer_fixture.py PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import argparse
import copy
import json
from pathlib import Path

from tokenizers import pre_tokenizers
from transformers import AutoTokenizer

from reference_common import FIXTURE_ROOT, library_versions, load_gguf_tokenizer, write_json

CORPUS = Path(__file__).resolve().parent / "tokenizer_corpus.txt"


def corpus_lines() -> list[str]:
    lines = CORPUS.read_text(encoding="utf-8").split("\n")[:-1]  # the file ends with a newline
    if len(lines) != 200:
        raise RuntimeError(f"{CORPUS} must have exactly 200 lines, has {len(lines)}")
    return lines


def encode_lines(tokenizer, lines: list[str]) -> list[dict]:
    entries = []
    for index, line in enumerate(lines):
        ids = tokenizer.encode(line, add_special_tokens=False)
        decoded = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        entries.append({"line": index, "text": line, "ids": ids, "decoded": decoded,
                        "round_trip": decoded == line})
    return entries


def with_digit_split(tokenizer):
    """The same vocabulary and merges behind llama.cpp's "smollm" pre-tokenizer: \\p{N} split, then GPT-2 regex
    (also the pre-tokenizer of the original HF SmolLM2 tokenizer.json)."""
    backend = copy.deepcopy(tokenizer.backend_tokenizer)
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=True)])
    return backend


def digit_split_differences(tokenizer, entries: list[dict]) -> list[dict]:
    backend = with_digit_split(tokenizer)
    differences = []
    for entry in entries:
        ids = backend.encode(entry["text"], add_special_tokens=False).ids
        if ids != entry["ids"]:
            differences.append({"line": entry["line"], "ids_with_digit_split": ids})
    return differences


def summary(entries: list[dict]) -> dict:
    return {"lines": len(entries), "tokens": sum(len(entry["ids"]) for entry in entries),
            "round_trip_failures": [entry["line"] for entry in entries if not entry["round_trip"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", help="path to SmolLM2-135M-Instruct.Q4_1.gguf")
    arguments = parser.parse_args()
    lines = corpus_lines()
    encode_settings = "encode(line, add_special_tokens=False)"
    decode_settings = "decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)"

    smollm2 = load_gguf_tokenizer(arguments.gguf)
    entries = encode_lines(smollm2, lines)
    backend = json.loads(smollm2.backend_tokenizer.to_str())
    differences = digit_split_differences(smollm2, entries)
    write_json(FIXTURE_ROOT / "smollm2-135m-instruct" / "tokenizer_ids.json", {
        "tokenizer": f"transformers AutoTokenizer.from_pretrained(dir, gguf_file={Path(arguments.gguf).name})",
        "normalizer": backend["normalizer"],
        "pre_tokenizer": backend["pre_tokenizer"],
        "encode": encode_settings,
        "decode": decode_settings,
        "summary": summary(entries),
        "llama_cpp_digit_split": {
            "note": "transformers ignores tokenizer.ggml.pre='smollm'; llama.cpp splits every \\p{N} first. "
                    "Lines whose ids differ under that split (the fixture ids above are transformers').",
            "lines": differences,
        },
        "entries": entries,
        "versions": library_versions(),
    })

    tiny_dir = FIXTURE_ROOT / "tiny-llama"
    tiny = AutoTokenizer.from_pretrained(tiny_dir)
    tiny_entries = encode_lines(tiny, lines)
    write_json(tiny_dir / "tokenizer_ids.json", {
        "tokenizer": "tiny-llama/tokenizer.json",
        "encode": encode_settings,
        "decode": decode_settings,
        "summary": summary(tiny_entries),
        "entries": tiny_entries,
        "versions": library_versions(),
    })
    print(json.dumps({"smollm2": summary(entries), "digit_split_differences": len(differences),
                      "tiny_llama": summary(tiny_entries)}))


if __name__ == "__main__":
    main()
