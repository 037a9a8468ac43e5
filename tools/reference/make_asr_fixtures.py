"""Writes the clips of xllm.speech.CifAsrModelTest's overfit test: four short espeak-ng utterances at 16 kHz.

  espeak-ng -v en-us -s 170 -w CLIP.wav "PHRASE"      (22.05 kHz mono 16-bit)
  -> torchaudio.functional.resample(x, 22050, 16000) in float64 -> 16-bit PCM, mono, 16 kHz

and manifest.jsonl ({"id", "audio", "text"}, audio relative to the manifest, as DESIGN.md section 4).
Run with the audio environment: /tmp/audiovenv/bin/python tools/reference/make_asr_fixtures.py
"""
import json
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import torch
import torchaudio

OUT = Path(__file__).resolve().parents[2] / "src/test/resources/fixtures/asr"
PHRASES = ["red circle", "blue square", "green triangle", "yellow star"]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for phrase in PHRASES:
            stem = phrase.replace(" ", "_")
            raw = Path(tmp) / (stem + ".wav")
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "170", "-w", str(raw), phrase], check=True)
            with wave.open(str(raw)) as w:
                rate = w.getframerate()
                pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
            x = torchaudio.functional.resample(torch.from_numpy(pcm), rate, 16000).numpy()
            out = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
            with wave.open(str(OUT / (stem + ".wav")), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(16000)
                w.writeframes(out.tobytes())
            lines.append(json.dumps({"id": stem, "audio": stem + ".wav", "text": phrase}))
    (OUT / "manifest.jsonl").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
