"""Writes the image-format fixtures under src/test/resources/fixtures/vision/formats/.

Each image is 48 x 32 pixels in four quadrants of known colour (top-left red, top-right green, bottom-left blue,
bottom-right a light orange), so a test can check decoded colours without a reference decoder:

  quadrants_lossy.webp      lossy WebP (quality 90)
  quadrants_lossless.webp   lossless WebP, RGBA: the bottom-right quadrant has alpha 128 (the loader drops alpha
                            without compositing, as PIL's convert("RGB")), so every pixel decodes exactly
  quadrants_cmyk.jpg        CMYK JPEG (Pillow writes Adobe-style inverted CMYK with an APP14 marker); the quadrant
                            colours are given as CMYK values, their RGB is PIL's naive conversion
                            R = (255 - K) - C(255 - K) / 255 (no ICC profile is embedded), which TwelveMonkeys'
                            no-profile conversion matches within a level

formats.json records, per file, PIL's own decode converted to RGB (Image.open(...).convert("RGB")) at the centre of
each quadrant, and the colour each quadrant was drawn with (as RGB).

Read by src/test/java/xllm/vision/ImageLoaderTest.java.

Usage: python tools/reference/make_image_format_fixtures.py   (needs Pillow with WebP support)
"""
import json
from importlib.metadata import version
from pathlib import Path

from PIL import Image, ImageDraw, features

OUT = Path(__file__).resolve().parents[2] / "src" / "test" / "resources" / "fixtures" / "vision" / "formats"
WIDTH, HEIGHT = 48, 32
RGB_QUADRANTS = [(220, 30, 40), (30, 200, 60), (40, 60, 210), (250, 180, 90)]  # TL, TR, BL, BR
CMYK_QUADRANTS = [(0, 200, 180, 20), (200, 0, 200, 40), (220, 160, 0, 10), (0, 60, 150, 0)]
CENTRES = [(WIDTH // 4, HEIGHT // 4), (3 * WIDTH // 4, HEIGHT // 4),
           (WIDTH // 4, 3 * HEIGHT // 4), (3 * WIDTH // 4, 3 * HEIGHT // 4)]


def quadrants(mode: str, colours) -> Image.Image:
    image = Image.new(mode, (WIDTH, HEIGHT))
    draw = ImageDraw.Draw(image)
    half_w, half_h = WIDTH // 2, HEIGHT // 2
    boxes = [(0, 0, half_w - 1, half_h - 1), (half_w, 0, WIDTH - 1, half_h - 1),
             (0, half_h, half_w - 1, HEIGHT - 1), (half_w, half_h, WIDTH - 1, HEIGHT - 1)]
    for box, colour in zip(boxes, colours):
        draw.rectangle(box, fill=colour)
    return image


def cmyk_to_rgb(c, m, y, k):
    """Pillow's cmyk2rgb: each channel (255 - K) - round(ink * (255 - K) / 255)."""
    return tuple((255 - k) - round(ink * (255 - k) / 255) for ink in (c, m, y))


def main() -> None:
    if not features.check("webp"):
        raise SystemExit("this Pillow has no WebP support")
    OUT.mkdir(parents=True, exist_ok=True)
    files = {}

    lossy = quadrants("RGB", RGB_QUADRANTS)
    lossy.save(OUT / "quadrants_lossy.webp", format="WEBP", quality=90, method=6)
    files["quadrants_lossy.webp"] = RGB_QUADRANTS

    rgba = [colour + (255,) for colour in RGB_QUADRANTS[:3]] + [RGB_QUADRANTS[3] + (128,)]
    lossless = quadrants("RGBA", rgba)
    lossless.save(OUT / "quadrants_lossless.webp", format="WEBP", lossless=True, exact=True)
    files["quadrants_lossless.webp"] = RGB_QUADRANTS

    cmyk = quadrants("CMYK", CMYK_QUADRANTS)
    cmyk.save(OUT / "quadrants_cmyk.jpg", format="JPEG", quality=95, subsampling=0)
    files["quadrants_cmyk.jpg"] = [cmyk_to_rgb(*colour) for colour in CMYK_QUADRANTS]

    record = {"width": WIDTH, "height": HEIGHT, "centres": CENTRES, "pillow": version("pillow"), "files": {}}
    for name, drawn in files.items():
        with Image.open(OUT / name) as image:
            mode = image.mode
            rgb = image.convert("RGB")
            decoded = [list(rgb.getpixel(centre)) for centre in CENTRES]
        record["files"][name] = {"mode": mode, "drawn_rgb": [list(c) for c in drawn], "pil_rgb_at_centres": decoded}
        print(name, mode, (OUT / name).stat().st_size, "bytes", decoded)
    (OUT / "formats.json").write_text(json.dumps(record) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
