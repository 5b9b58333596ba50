#!/usr/bin/env bash
# Every benchmark at a small size, as CI's smoke test: each builds, runs end
# to end and prints its figures. At this size the figures mean nothing; the
# README quotes full-size runs and the command for each.
set -euo pipefail
cd "$(dirname "$0")/.."
export USERS=2000 PER_DAY=2000 DECISIONS=200 MORE=200 PASSAGES=2000 EVENTS=2000 TRIALS=1 BATCH=500 EVERY_MS=1
# In the test profile: the test command has built every dependency so
# already (CI runs this after it), and at this size speed means nothing;
# a release build of every bench costs CI minutes. `cargo bench` (release)
# is for the figures.
cargo test --locked --bench '*'
