#!/usr/bin/env bash
# On the accelerator machine: the same deepwgsl command through several bundles, one after another
# in one call, so that builds are compared on one machine (a later call may get another GPU).
#   bash scripts/device-run.sh .dev/new .dev/old -- bench --decode --iters 16
# Bundles come from `node scripts/build.mjs --device DIR` (one per build: a git worktree per commit).
# Each runs under Node (Dawn) with a tuning store of its own, so no run plans from another's
# winners; set DEEPWGSL_RUN_TIMEOUT (seconds, default 240) to bound each. Logs go to $OUT/<bundle
# name>.log; the ceilings and the bench rows are printed last, one block per bundle.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device-env.sh >/dev/null 2>&1
dirs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do dirs+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ ${#dirs[@]} -gt 0 ] && [ $# -gt 0 ] || { echo "usage: bash scripts/device-run.sh BUNDLE_DIR... -- DEEPWGSL_ARGS..." >&2; exit 2; }
out=${OUT:-/tmp/device-run}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
for d in "${dirs[@]}"; do
  name=$(basename "$d")
  t0=$SECONDS
  DEEPWGSL_JIT_CACHE_DIR="/tmp/deepwgsl-tuning-$name-$$" timeout "${DEEPWGSL_RUN_TIMEOUT:-240}" /tmp/node "$d/cli.js" "$@" > "$out/$name.log" 2>&1
  echo "$name: exit $? after $((SECONDS - t0)) s"
done
for d in "${dirs[@]}"; do
  name=$(basename "$d")
  echo "== $name"
  grep -E '^\| ' "$out/$name.log" | grep -vE '^\| (---|ceiling|case) ' | sed -E 's/ +\|/|/g; s/\| +/|/g' | cut -c1-300
done
