#!/usr/bin/env bash
# README command 2 (and what CI runs): set up, build, run unit and end-to-end tests.
# End-to-end tests drive real Open vSwitch, namespaces and daemons, one at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
export GEMELO_BIN="$PWD/target/debug/gemelo"
cargo test --workspace --locked -- --test-threads=1
