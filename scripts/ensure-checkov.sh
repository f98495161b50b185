#!/usr/bin/env bash
# Installs checkov (IaC policy checks run over the synthesized templates by tests/infra) into its
# own virtualenv, .venv-checkov, so its many pinned dependencies can never clash with the app's
# locked ones in .venv. Idempotent: does nothing when the pinned version is already there.
# Prints the path of the checkov executable.
set -euo pipefail
CHECKOV_VERSION="3.3.30"
cd "$(dirname "$0")/.."
VENV=.venv-checkov
STAMP="$VENV/.checkov-$CHECKOV_VERSION"
if [ ! -f "$STAMP" ]; then
  PYTHON="${PYTHON:-python3}"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2
  touch "$STAMP"
fi
echo "$PWD/$VENV/bin/checkov"
