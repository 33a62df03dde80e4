#!/usr/bin/env bash
# README command 1: set up what is missing, build, and run `gemelo demo` on the embedded lab.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
exec ./target/debug/gemelo demo "$@"
