"""Makes the tiny BERT fixtures under src/test/resources/fixtures/bert/ for the BLIP-2 style Q-Former initialisation
and the Q-Former text path.

A tiny random transformers `BertModel` (hidden 64, 2 layers, 4 heads, intermediate 128, 32 positions) over a
WordPiece vocabulary of the synthetic-scene words, weights drawn from N(0, 0.2) (LayerNorm gains around 1) so that
outputs are far from flat, in eval mode (no dropout).

  config.json, model.safetensors   the BertModel (HF names, with pooler, token-type embeddings and position_ids as
                                   all-MiniLM-L6-v2 has them)
  tokenizer.json, vocab.txt, ...   the matching BertTokenizerFast (lower-casing WordPiece)
  reference.safetensors            input_ids (2, T) of CAPTIONS (row 1 padded), attention_mask (2, T) and
                                   last_hidden_state (2, T, 64) of the same BertModel with its token-type embeddings
                                   set to zero: the BLIP-2 Q-Former embeds text without token types
  reference.json                   library versions, the captions and their token ids

Read by src/test/java/xllm/x2l/QFormerBertInitTest.java and QFormerTextTest.java.

Usage: python tools/reference/make_bert_fixtures.py
"""
import tempfile
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

from reference_common import REPO_ROOT, check_size, library_versions, write_json, write_tensors

OUT = REPO_ROOT / "src" / "test" / "resources" / "fixtures" / "bert"
SEED = 2468
WEIGHT_STD = 0.2
WORDS = ["a", "an", "the", "it", "is", "this", "there", "are", "of", "in", "on", "picture", "image", "one", "two",
         "three", "four", "five", "red", "green", "blue", "yellow", "purple", "orange", "circle", "square", "triangle",
         "small", "large", "left", "right", "center", "top", "bottom", ".", ",", "?", "##s", "##es"]
CAPTIONS = ["Three green circles.", "It is red."]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp) / "vocab.txt"
        vocab_file.write_text("\n".join(vocab) + "\n")
        tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True)
        tokenizer.save_pretrained(str(OUT))
    for name in ["tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"]:
        check_size(OUT / name)

    torch.manual_seed(SEED)
    config = BertConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=32, hidden_act="gelu", layer_norm_eps=1e-12)
    model = BertModel(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("LayerNorm.weight"):
                parameter.copy_(1 + WEIGHT_STD * torch.randn_like(parameter))
            else:
                parameter.copy_(WEIGHT_STD * torch.randn_like(parameter))
    config.to_json_file(str(OUT / "config.json"))
    state = dict(model.state_dict())
    state["embeddings.position_ids"] = torch.arange(config.max_position_embeddings).unsqueeze(0)
    write_tensors(OUT / "model.safetensors", state)

    batch = tokenizer(CAPTIONS, padding=True, return_tensors="pt")
    with torch.no_grad():
        model.embeddings.token_type_embeddings.weight.zero_()
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    write_tensors(OUT / "reference.safetensors", {"input_ids": batch["input_ids"],
                                                  "attention_mask": batch["attention_mask"],
                                                  "last_hidden_state": hidden})
    write_json(OUT / "reference.json", {"versions": library_versions(), "seed": SEED, "captions": CAPTIONS,
                                        "input_ids": batch["input_ids"].tolist(),
                                        "max_abs_hidden": hidden.abs().max().item()})


if __name__ == "__main__":
    main()
