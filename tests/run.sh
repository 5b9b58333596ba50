#!/usr/bin/env bash
# The project's test command (README): every crate's unit, property and
# integration tests, including the black-box tests that start the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
