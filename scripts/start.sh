#!/usr/bin/env bash
# The main command: installs what is missing, then runs the bundled example on the
# embedded defaults. Arguments are passed to harmonia-ci.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh run
exec node bin/harmonia-ci.mjs dev --once "$@"
