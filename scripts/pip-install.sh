#!/usr/bin/env bash
# Installs packages from PyPI into an existing venv with uv (pinned below, itself installed
# once with pip into a small venv under the hicra home): uv resolves and downloads in
# parallel, which takes a fresh machine's several GB of torch and its CUDA libraries in a
# few minutes where pip takes over twenty. Tried three times: one dropped connection should
# not fail the run.
#
#   bash scripts/pip-install.sh VENV PACKAGE...
set -uo pipefail
venv="$1"
shift
UV_VERSION=0.13.10
HICRA_HOME="${HICRA_HOME:-$HOME/.cache/hicra}"
UV_VENV="$HICRA_HOME/uv-venv"
uv="$UV_VENV/bin/uv"

# One installer of uv at a time: several venvs may be set up in parallel.
mkdir -p "$HICRA_HOME"
if ! (
  flock 9
  if [ "$("$uv" --version 2>/dev/null | cut -d' ' -f1-2)" != "uv $UV_VERSION" ]; then
    rm -rf "$UV_VENV"
    python3 -m venv "$UV_VENV" && "$UV_VENV/bin/pip" install --quiet --retries 10 --timeout 60 "uv==$UV_VERSION"
  fi
) 9> "$HICRA_HOME/.uv-install.lock"; then
  echo "could not install uv $UV_VERSION into $UV_VENV" >&2
  exit 1
fi

for attempt in 1 2 3; do
  UV_HTTP_TIMEOUT=120 "$uv" pip install --quiet --python "$venv/bin/python" "$@" && exit 0
  echo "uv pip install into $venv failed (attempt $attempt of 3)" >&2
  [ "$attempt" -lt 3 ] && sleep 20
done
echo "could not install into $venv: $*" >&2
exit 1
