#!/usr/bin/env bash
# The main command: installs what is missing, then runs CI on the bundled example
# (examples/) on the embedded defaults, with live progress. Arguments go to `harmonia-ci run`.
# The example contains a build that fails on purpose, so its summary shows a failure and a
# dep-failed job; this script exits 0 when the run itself worked as intended.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh run
set +e
node bin/harmonia-ci.mjs run examples "$@"
status=$?
set -e
# 1 means "some job failed", which the example is made to show; anything else is a real error.
if [ "$status" -le 1 ]; then
  echo
  echo "The example ran: flaky-test fails on purpose and release is dep-failed because of it."
  echo "Run it again to see cached results, or \`node bin/harmonia-ci.mjs run <your flake>\` for your own."
  exit 0
fi
exit "$status"
