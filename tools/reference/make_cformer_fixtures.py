"""Fixture for xllm.x2l.BertEncoder (the C-Former's transformer): a tiny random transformers BertModel called with
inputs_embeds and a padding attention_mask, eval mode. Writes src/test/resources/fixtures/cformer/:
bert/config.json + bert/model.safetensors (the checkpoint, BertModel state dict incl. word embeddings and pooler),
io.safetensors (inputs_embeds (2, 7, 32), last_hidden_state), io.json (lengths, versions).
Read by BertEncoderTest. Run: tools/reference/.venv/bin/python tools/reference/make_cformer_fixtures.py"""
import torch
from transformers import BertConfig, BertModel

from reference_common import REPO_ROOT, library_versions, write_json, write_tensors

OUT = REPO_ROOT / "src" / "test" / "resources" / "fixtures" / "cformer"


def main():
    torch.manual_seed(1234)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=16, type_vocab_size=2,
                        hidden_act="gelu", layer_norm_eps=1e-12, attn_implementation="eager")
    model = BertModel(config).eval()
    with torch.no_grad():  # random LayerNorms and biases so nothing is trivially 1 or 0
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    (OUT / "bert").mkdir(parents=True, exist_ok=True)
    model.save_pretrained(OUT / "bert", safe_serialization=True)
    inputs = torch.randn(2, 7, 32)
    lengths = [7, 4]
    mask = torch.zeros(2, 7, dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
    with torch.no_grad():
        hidden = model(inputs_embeds=inputs, attention_mask=mask).last_hidden_state
    write_tensors(OUT / "io.safetensors", {"inputs_embeds": inputs, "last_hidden_state": hidden})
    write_json(OUT / "io.json", {"lengths": lengths, "versions": library_versions()})


if __name__ == "__main__":
    main()
