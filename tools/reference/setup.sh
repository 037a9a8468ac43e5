#!/usr/bin/env bash
# Creates tools/reference/.venv with the pinned reference stack (requirements.txt) and prints its python path
# on stdout. Idempotent: an existing venv is reused, and pip is skipped when requirements.txt is unchanged
# since the last successful install. Progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
stamp="$venv/.requirements.sha256"
wanted="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"

if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv" >&2
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
  echo "installing $here/requirements.txt" >&2
  "$venv/bin/python" -m pip install --disable-pip-version-check --quiet -r "$here/requirements.txt" >&2
  echo "$wanted" > "$stamp"
fi
echo "$venv/bin/python"
