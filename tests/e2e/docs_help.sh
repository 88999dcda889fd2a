#!/usr/bin/env bash
# docs_help.sh - the --help texts quoted in docs/options.md are today's:
# itrackerd's, itrackerctl's and each itrackerctl command's, every command
# that `itrackerctl --help` lists included (tools/docs_help.py). Drift in
# either direction fails the build.
set -euo pipefail
cd "${ITRACKER_ROOT:-$(dirname "$0")/../..}"
python3 tools/docs_help.py --check --build "${BUILD:-build}"
