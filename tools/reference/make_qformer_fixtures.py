"""Makes the Q-Former parity fixtures under src/test/resources/fixtures/qformer/.

A tiny random transformers `Blip2QFormerModel` (hidden 64, 2 layers, 4 heads, intermediate 128, encoder width 48,
8 query tokens, cross_attention_frequency 2: layer 0 cross-attends to the image features, layer 1 does not),
weights drawn from N(0, 0.2) (LayerNorm gains around 1) so that outputs are far from flat, in eval mode (no dropout).

  config.json             the Blip2QFormerConfig fields xllm reads (HF names) plus num_query_tokens
  model.safetensors       the Blip2QFormerModel state dict (HF names) plus `query_tokens` (1, 8, 64), as Blip2Model
                          stores it beside `qformer.*`
  reference.safetensors   query_embeds (2, 8, 64), encoder_hidden_states (2, 10, 48), encoder_attention_mask (2, 10)
                          (row 1 masks its last 3 frames), last_hidden_state (2, 8, 64), weights R (2, 8, 64) and the
                          gradients of sum(last_hidden_state * R) w.r.t. query_embeds and encoder_hidden_states;
                          last_hidden_state_learned: the output for the learned query_tokens (expanded over the batch)
  parameter_gradients.safetensors  the gradient of sum(last_hidden_state * R) w.r.t. every parameter, under its
                          name (query_tokens: of sum(last_hidden_state_learned * R))
  reference.json          library versions and the maximum magnitudes of the stored outputs

Read by src/test/java/xllm/x2l/QFormerTest.java.

Usage: python tools/reference/make_qformer_fixtures.py
"""
import json
from pathlib import Path

import torch
from transformers.models.blip_2.configuration_blip_2 import Blip2QFormerConfig
from transformers.models.blip_2.modeling_blip_2 import Blip2QFormerModel

from reference_common import REPO_ROOT, library_versions, write_json, write_tensors

OUT = REPO_ROOT / "src" / "test" / "resources" / "fixtures" / "qformer"
SEED = 4321
WEIGHT_STD = 0.2
BATCH, QUERIES, FRAMES = 2, 8, 10

CONFIG = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
              cross_attention_frequency=2, encoder_hidden_size=48, layer_norm_eps=1e-12,
              hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    model = Blip2QFormerModel(Blip2QFormerConfig(**CONFIG)).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "LayerNorm" in name or name.startswith("layernorm"):
                base = 1.0 if name.endswith("weight") else 0.0
                parameter.copy_(base + 0.1 * torch.randn_like(parameter))
            else:
                parameter.copy_(WEIGHT_STD * torch.randn_like(parameter))
    query_tokens = torch.randn(1, QUERIES, CONFIG["hidden_size"])

    state = {name: tensor for name, tensor in model.state_dict().items()}
    state["query_tokens"] = query_tokens.clone()
    write_tensors(OUT / "model.safetensors", state)
    write_json(OUT / "config.json", {**CONFIG, "num_query_tokens": QUERIES, "model_type": "blip_2_qformer"})

    query_embeds = torch.randn(BATCH, QUERIES, CONFIG["hidden_size"], requires_grad=True)
    encoder_hidden_states = torch.randn(BATCH, FRAMES, CONFIG["encoder_hidden_size"], requires_grad=True)
    encoder_attention_mask = torch.ones(BATCH, FRAMES)
    encoder_attention_mask[1, FRAMES - 3:] = 0
    weights = torch.randn(BATCH, QUERIES, CONFIG["hidden_size"])

    output = model(query_embeds=query_embeds, encoder_hidden_states=encoder_hidden_states,
                   encoder_attention_mask=encoder_attention_mask).last_hidden_state
    (output * weights).sum().backward()
    parameter_gradients = {name: parameter.grad.clone() for name, parameter in model.named_parameters()}

    model.zero_grad()
    query_tokens.requires_grad_(True)
    learned = model(query_embeds=query_tokens.expand(BATCH, -1, -1), encoder_hidden_states=encoder_hidden_states.detach(),
                    encoder_attention_mask=encoder_attention_mask).last_hidden_state
    (learned * weights).sum().backward()
    parameter_gradients["query_tokens"] = query_tokens.grad.clone()
    learned = learned.detach()

    reference = {
        "query_embeds": query_embeds.detach(),
        "encoder_hidden_states": encoder_hidden_states.detach(),
        "encoder_attention_mask": encoder_attention_mask,
        "last_hidden_state": output.detach(),
        "last_hidden_state_learned": learned,
        "output_weights": weights,
        "grad_query_embeds": query_embeds.grad,
        "grad_encoder_hidden_states": encoder_hidden_states.grad,
    }
    write_tensors(OUT / "reference.safetensors", reference)
    write_tensors(OUT / "parameter_gradients.safetensors", parameter_gradients)
    write_json(OUT / "reference.json", {
        "versions": library_versions(),
        "seed": SEED,
        "max_abs": {key: float(value.abs().max()) for key, value in reference.items()},
        "max_abs_parameter_gradient": max(float(g.abs().max()) for g in parameter_gradients.values()),
        "parameters": sorted(state.keys()),
    })
    print(json.dumps({key: float(value.abs().max()) for key, value in reference.items()}, indent=1))


if __name__ == "__main__":
    main()
