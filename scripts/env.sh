#!/usr/bin/env bash
# Sourced by the scripts: one build cache outside the clone, reused between runs.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/yonder/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
