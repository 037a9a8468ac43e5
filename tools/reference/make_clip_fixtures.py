"""Makes the CLIP vision-encoder parity fixtures under src/test/resources/fixtures/clip/.

Tiny random transformers `CLIPVisionModel`s (image 32, patch 8 -> 16 patches + the class token = 17 positions),
weights drawn from N(0, 0.2) (LayerNorm gains around 1, class and position embeddings N(0, 0.5)) so that outputs
are far from flat, in eval mode:

  quick_gelu/            hidden 32, 3 layers, 4 heads, intermediate 64, hidden_act quick_gelu (OpenAI CLIP's)
    config.json          CLIPVisionConfig (HF names, model_type clip_vision_model)
    model.safetensors    the CLIPVisionModel state dict (vision_model.* keys)
    model.pth            the same state dict through torch.save (zip format)
  gelu/                  hidden 32, 2 layers, 2 heads, intermediate 48, hidden_act gelu (exact erf), eps 1e-6
    config.json, model.safetensors
  full_clip/             a tiny CLIPModel (text tower hidden 16, 1 layer) whose vision tower is quick_gelu's:
    config.json          CLIPConfig with text_config and vision_config
    model.safetensors    vision_model.*, text_model.*, visual_projection.weight, text_projection.weight, logit_scale
  reference.safetensors  pixel_values (2, 3, 32, 32); per model NAME in (quick_gelu, gelu): NAME.last_hidden_state
                         (2, 17, 32), NAME.penultimate = hidden_states[-2] (2, 17, 32), NAME.pooler_output (2, 32)
  reference.json         library versions and the maximum magnitudes of the stored outputs

Read by src/test/java/xllm/vision/ClipVisionEncoderTest.java.

Usage: /tmp/refvenv/bin/python tools/reference/make_clip_fixtures.py   (torch, transformers 4.57.1, safetensors)
"""
import torch
from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModel

from reference_common import REPO_ROOT, check_size, library_versions, write_json, write_tensors

OUT = REPO_ROOT / "src" / "test" / "resources" / "fixtures" / "clip"
SEED = 2024
BATCH = 2

CONFIGS = {
    "quick_gelu": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                       num_channels=3, image_size=32, patch_size=8, hidden_act="quick_gelu", layer_norm_eps=1e-5),
    "gelu": dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
                 num_channels=3, image_size=32, patch_size=8, hidden_act="gelu", layer_norm_eps=1e-6),
}
TEXT_CONFIG = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                   max_position_embeddings=8)


def randomise(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "layer_norm" in name or "layrnorm" in name or "layernorm" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                parameter.copy_(base + 0.1 * torch.randn_like(parameter))
            elif "class_embedding" in name or "position_embedding" in name:
                parameter.copy_(0.5 * torch.randn_like(parameter))
            else:
                parameter.copy_(0.2 * torch.randn_like(parameter))


def main() -> None:
    torch.manual_seed(SEED)
    pixel_values = torch.randn(BATCH, 3, 32, 32)
    reference = {"pixel_values": pixel_values}
    magnitudes = {}
    models = {}
    for name, config in CONFIGS.items():
        folder = OUT / name
        folder.mkdir(parents=True, exist_ok=True)
        model = CLIPVisionModel(CLIPVisionConfig(**config)).eval()
        randomise(model)
        models[name] = model
        state = model.state_dict()
        write_tensors(folder / "model.safetensors", state)
        write_json(folder / "config.json", {**config, "model_type": "clip_vision_model",
                                             "architectures": ["CLIPVisionModel"]})
        if name == "quick_gelu":
            torch.save({key: tensor.contiguous() for key, tensor in state.items()}, folder / "model.pth")
            check_size(folder / "model.pth")
        with torch.no_grad():
            output = model(pixel_values=pixel_values, output_hidden_states=True)
        reference[f"{name}.last_hidden_state"] = output.last_hidden_state
        reference[f"{name}.penultimate"] = output.hidden_states[-2]
        reference[f"{name}.pooler_output"] = output.pooler_output
        for key in ("last_hidden_state", "penultimate", "pooler_output"):
            magnitudes[f"{name}.{key}"] = reference[f"{name}.{key}"].abs().max().item()

    # a whole CLIPModel whose vision tower is quick_gelu's: text keys beside vision_model.*
    full = CLIPModel(CLIPConfig(text_config=TEXT_CONFIG, vision_config=CONFIGS["quick_gelu"], projection_dim=16)).eval()
    randomise(full)
    full.vision_model.load_state_dict({key.removeprefix("vision_model."): tensor
                                       for key, tensor in models["quick_gelu"].state_dict().items()})
    folder = OUT / "full_clip"
    folder.mkdir(parents=True, exist_ok=True)
    write_tensors(folder / "model.safetensors", full.state_dict())
    write_json(folder / "config.json", {"model_type": "clip", "architectures": ["CLIPModel"], "projection_dim": 16,
                                        "text_config": TEXT_CONFIG, "vision_config": CONFIGS["quick_gelu"]})
    with torch.no_grad():
        check = full.vision_model(pixel_values=pixel_values).last_hidden_state
    assert torch.equal(check, reference["quick_gelu.last_hidden_state"]), "full CLIPModel vision tower differs"

    write_tensors(OUT / "reference.safetensors", reference)
    write_json(OUT / "reference.json", {"versions": library_versions(), "seed": SEED, "max_abs": magnitudes})
    print("max |output|:", magnitudes)


if __name__ == "__main__":
    main()
