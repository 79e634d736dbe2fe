#!/usr/bin/env bash
# The test command: installs what is missing, then type check, lint and the suite
# against real services (Temporal, PostgreSQL, SeaweedFS S3, nix-daemon).
# Arguments are test files to run instead of the whole suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh test
echo "test: type check (tsc)"
npx tsc --noEmit -p tsconfig.json
echo "test: lint (eslint)"
npx eslint --max-warnings 0 .
echo "test: suite"
exec node --import tsx test/run.ts "$@"
