#!/usr/bin/env bash
# Installs the system packages the test suites need when they are missing (fresh machine, root):
# a PostgreSQL server for the integration tests and Chromium for the browser page test
# (tests/e2e/test_browser_page.py drives Debian's /usr/bin/chromium headless over the DevTools
# protocol). Idempotent: installs only what is missing.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing test dependencies: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
