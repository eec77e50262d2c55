#!/usr/bin/env bash
# pip install into an existing venv, tried three times: a fresh machine downloads several GB
# from PyPI, and one dropped connection should not fail the run.
#
#   bash scripts/pip-install.sh VENV PACKAGE...
set -uo pipefail
venv="$1"
shift
for attempt in 1 2 3; do
  "$venv/bin/pip" install --quiet --retries 10 --timeout 60 "$@" && exit 0
  echo "pip install into $venv failed (attempt $attempt of 3)" >&2
  [ "$attempt" -lt 3 ] && sleep 20
done
echo "could not install into $venv: $*" >&2
exit 1
