#!/usr/bin/env bash
# Minimal deploy entry point; the deploy issue turns this into the full one-command installer
# (Docker or --systemd, .env handling, health wait). Today it only supports --dry-run planning
# and the systemd-less local start, and says so.
set -euo pipefail
cd "$(dirname "$0")"

DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h|--help) echo "usage: ./deploy.sh [--dry-run]"; exit 0 ;;
    *) echo "deploy.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

run() {
  if [ "$DRY_RUN" = 1 ]; then echo "would run: $*"; else "$@"; fi
}

run make build
echo "start the scanner with: make run   (or docker build -t mexc-pump-scanner . on a host with Docker)"
