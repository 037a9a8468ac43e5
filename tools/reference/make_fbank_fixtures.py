"""Writes the fixtures of xllm.speech.FbankTest: three short WAV files and torchaudio's Kaldi fbank of each.

  speech_16k.wav          espeak-ng speech (a chirp when espeak-ng is missing), resampled to 16 kHz, mono 16-bit
  chirp_noise_16k.wav     100 Hz -> 7.5 kHz chirp plus white noise, 16 kHz mono 16-bit
  chirp_44k_stereo.wav    44.1 kHz stereo 16-bit: a chirp on the left, a two-tone chord plus noise on the right

fbank.safetensors holds, per file stem, torchaudio.compliance.kaldi.fbank(waveform * 32768, num_mel_bins=80,
frame_length=25, frame_shift=10, dither=0.0, energy_floor=0.0, sample_frequency=16000) as float32
(frames, 80), and under "<stem>.float64" the same call on a float64 waveform (torchaudio computes in the
waveform's dtype; its float32 result differs from the float64 one by up to ~2e-3 in low-energy bins). The
44.1 kHz file is averaged to mono and resampled by torchaudio.functional.resample with the parameters of
xllm.speech.Resampler (RESAMPLE_ARGS), in float64; that waveform is stored as "<stem>.resampled".
reference.json records the library versions and shapes.

Run with the audio environment (torchaudio needs a matching torch, so it is separate from requirements.txt):
  python3 -m venv /tmp/audiovenv && /tmp/audiovenv/bin/pip install -r tools/reference/requirements-audio.txt
  /tmp/audiovenv/bin/python tools/reference/make_fbank_fixtures.py
"""
import json
import platform
import shutil
import subprocess
import tempfile
import wave
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
import torchaudio
from safetensors.torch import save_file

REPO_ROOT = Path(__file__).resolve().parents[2]
OUT = REPO_ROOT / "src" / "test" / "resources" / "fixtures" / "fbank"
SECONDS = 2.0
SEED = 1234


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """samples: float (n,) or (n, channels) in [-1, 1]; written as 16-bit PCM."""
    if samples.ndim == 1:
        samples = samples[:, None]
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(samples.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


def read_wav(path: Path) -> tuple[torch.Tensor, int]:
    """Mono float32 in [-1, 1] (int16 / 32768, channels averaged), as xllm.speech.WavReader reads it."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2
        rate, channels = wav.getframerate(), wav.getnchannels()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, channels)
    return torch.from_numpy((pcm.astype(np.float64) / 32768.0).mean(axis=1).astype(np.float32)), rate


def chirp(rate: int, f0: float, f1: float, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))
    return np.sin(phase)


def speech() -> tuple[np.ndarray, str]:
    if shutil.which("espeak-ng") is None:
        return 0.5 * chirp(16000, 200, 3000, SECONDS), "chirp (espeak-ng missing)"
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en", "-s", "170", "-w", str(raw),
                        "Speech features for a multimodal language model."], check=True)
        waveform, rate = read_wav(raw)
    waveform = torchaudio.functional.resample(waveform, rate, 16000)[: int(16000 * SECONDS)]
    waveform = 0.8 * waveform / waveform.abs().max()
    return waveform.numpy().astype(np.float64), f"espeak-ng ({rate} Hz, resampled by torchaudio)"


# the resampler of xllm.speech.Resampler, in torchaudio's terms (torchaudio's default is 6 / 0.99 / Hann)
RESAMPLE_ARGS = dict(lowpass_filter_width=32, rolloff=0.95, resampling_method="sinc_interp_kaiser", beta=8.6)


def fbank(waveform: torch.Tensor) -> torch.Tensor:
    """torchaudio keeps the waveform's dtype: float32 is the usual call, float64 the same maths unrounded."""
    return torchaudio.compliance.kaldi.fbank(
        waveform[None, :] * 32768, num_mel_bins=80, frame_length=25, frame_shift=10, dither=0.0,
        energy_floor=0.0, sample_frequency=16000)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    speech_samples, speech_source = speech()
    write_wav(OUT / "speech_16k.wav", speech_samples, 16000)
    noisy = 0.5 * chirp(16000, 100, 7500, SECONDS) + 0.05 * rng.standard_normal(int(16000 * SECONDS))
    write_wav(OUT / "chirp_noise_16k.wav", noisy, 16000)
    n44 = int(44100 * SECONDS)
    t44 = np.arange(n44) / 44100
    left = 0.6 * chirp(44100, 50, 12000, SECONDS)
    right = 0.3 * np.sin(2 * np.pi * 440 * t44) + 0.2 * np.sin(2 * np.pi * 2500 * t44) \
        + 0.02 * rng.standard_normal(n44)
    write_wav(OUT / "chirp_44k_stereo.wav", np.stack([left, right], axis=1), 44100)

    tensors = {}
    for stem in ["speech_16k", "chirp_noise_16k", "chirp_44k_stereo"]:
        waveform, rate = read_wav(OUT / f"{stem}.wav")
        if rate != 16000:
            waveform = torchaudio.functional.resample(waveform.double(), rate, 16000, **RESAMPLE_ARGS)
            tensors[f"{stem}.resampled"] = waveform.float()
            waveform = waveform.float()
        tensors[stem] = fbank(waveform)
        tensors[f"{stem}.float64"] = fbank(waveform.double()).float()
    tensors = {key: value.to(torch.float32).contiguous() for key, value in tensors.items()}
    shapes = {key: list(value.shape) for key, value in tensors.items()}
    save_file(tensors, str(OUT / "fbank.safetensors"))
    meta = {
        "generator": "tools/reference/make_fbank_fixtures.py",
        "call": "torchaudio.compliance.kaldi.fbank(waveform * 32768, num_mel_bins=80, frame_length=25, "
                "frame_shift=10, dither=0.0, energy_floor=0.0, sample_frequency=16000)",
        "resample": f"torchaudio.functional.resample(waveform.double(), 44100, 16000, **{RESAMPLE_ARGS}), 44.1 kHz file only",
        "speech_source": speech_source,
        "shapes": shapes,
        "versions": {"python": platform.python_version(),
                     **{name: version(name) for name in ["torch", "torchaudio", "numpy", "safetensors"]}},
    }
    (OUT / "reference.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    assert total < 2_000_000, f"fixtures take {total} bytes"
    print(json.dumps(meta, indent=1), f"\n{total} bytes in {OUT}")


if __name__ == "__main__":
    main()
