#!/usr/bin/env bash
# Wicket's Azure scenario: a private-endpoint Azure OpenAI service in AI Corp's VNet, an app in
# Health Corp's VNet, joined through a Wicket relay VM. See scripts/azure/README.md.
#
#   ./scripts/run.sh [up]     create (or resume) everything and print the demo client's answer
#   ./scripts/run.sh plan     print every resource `up` would create; calls nothing in Azure
#   ./scripts/run.sh cleanup  delete the three resource groups
set -euo pipefail

usage() {
  sed -n '5,7s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command="${1:-up}"
if [ "$#" -gt 1 ]; then
  echo "run.sh: one command at a time; settings come from the environment (see scripts/azure/README.md)" >&2
  exit 2
fi
case "$command" in
  up | plan | cleanup) ;;
  -h | --help | help)
    usage
    exit 0
    ;;
  *)
    echo "run.sh: unknown command '$command'" >&2
    usage >&2
    exit 2
    ;;
esac

if ! command -v node >/dev/null 2>&1; then
  echo "run.sh: Node.js 20 or newer is required" >&2
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "run.sh: Node.js 20 or newer is required (found $(node --version))" >&2
  exit 1
fi
if [ ! -x "$root/node_modules/.bin/tsx" ]; then
  echo "run.sh: dependencies are missing; run 'npm ci' in $root first" >&2
  exit 1
fi
exec "$root/node_modules/.bin/tsx" "$root/scripts/azure/main.ts" "$command"
