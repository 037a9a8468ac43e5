#!/usr/bin/env bash
# Creates tools/reference/.venv with the pinned reference stack and prints its python path on stdout: every
# package the fixture scripts and the `./xllm bench` peers import. requirements.txt is installed as usual, then
# requirements-nodeps.txt with --no-deps (packages whose own dependency lists are unpinned). The imports of every
# bench peer are then tried once, so a broken install fails here rather than in the middle of a benchmark.
# Idempotent: an existing venv is reused, and pip is skipped when neither requirements file changed since the
# last successful install. Progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
stamp="$venv/.requirements.sha256"
wanted="$(cat "$here/requirements.txt" "$here/requirements-nodeps.txt" | sha256sum | cut -d' ' -f1)"

if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv" >&2
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
  pip=("$venv/bin/python" -m pip install --disable-pip-version-check --quiet)
  echo "installing $here/requirements.txt" >&2
  "${pip[@]}" -r "$here/requirements.txt" >&2
  echo "installing $here/requirements-nodeps.txt (--no-deps)" >&2
  "${pip[@]}" --no-deps -r "$here/requirements-nodeps.txt" >&2
  echo "checking the bench peers' imports" >&2
  # bench_hf_generate.py, bench_train_step.py, bench_cif.py (via reference_common.py) and bench_vision.py
  (cd "$here" && "$venv/bin/python" -c "import bench_hf_generate, bench_train_step, bench_cif, bench_vision
import accelerate, gguf, efficientnet_lite_pytorch
from transformers import Blip2QFormerConfig, Blip2QFormerModel" >&2)
  echo "$wanted" > "$stamp"
fi
# bench serve's peer: llama.cpp's server, built from the sdist for this CPU (its own stamp: a slow build, done once)
llama_stamp="$venv/.requirements-llamacpp.sha256"
llama_wanted="$(sha256sum "$here/requirements-llamacpp.txt" | cut -d' ' -f1)"
if [ "$(cat "$llama_stamp" 2>/dev/null || true)" != "$llama_wanted" ]; then
  echo "installing $here/requirements-llamacpp.txt (builds llama.cpp with native CPU flags: ~10 minutes on 2 cores)" >&2
  CMAKE_ARGS="-DGGML_NATIVE=ON" "$venv/bin/python" -m pip install --disable-pip-version-check --quiet \
    -r "$here/requirements-llamacpp.txt" >&2
  "$venv/bin/python" -c "import llama_cpp.server.app" >&2
  echo "$llama_wanted" > "$llama_stamp"
fi
echo "$venv/bin/python"
