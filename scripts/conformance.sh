#!/usr/bin/env bash
# Runs the official MCP client conformance suite (pinned in tests/conformance/package.json, with
# the Node >= 22 it needs, both from npm) against `switchboard conformance-client`, for protocol
# versions 2025-11-25 and 2026-07-28. Fails on any failed scenario outside
# tests/conformance/expected-failures.yml (authorization scenarios only) and on any listed
# scenario that passes. Writes a Markdown table of every client scenario to
# $DIR/results/table.md (printed with --table), the README's conformance table.
. "$(dirname "$0")/common.sh"

VERSIONS=(2025-11-25 2026-07-28)
DIR="${SWITCHBOARD_CONFORMANCE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/conformance}"
PINS="$ROOT/tests/conformance"
mkdir -p "$DIR"

if ! cmp -s "$PINS/package-lock.json" "$DIR/package-lock.json" || [ ! -x "$DIR/node_modules/.bin/node" ]; then
  log "installing the conformance suite and Node 22 (npm)"
  cp "$PINS/package.json" "$PINS/package-lock.json" "$DIR/"
  (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
NODE="$DIR/node_modules/.bin/node"
SUITE="$DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"

log "building switchboard"
cargo build --locked --quiet --bin switchboard
CLIENT="$CARGO_TARGET_DIR/debug/switchboard conformance-client"

# One line per protocol version from the suite's summary: scenarios and checks passed, and
# how many scenarios failed as expected (the auth ones, until OAuth lands).
summarize() {
  awk -v version="$1" '
    /=== SUITE SUMMARY ===/ { summary = 1 }
    summary && /^✓ / { scenarios++; passed++ }
    summary && /^✗ / { scenarios++ }
    summary && /^Total:/ { checks = $2; failed_checks = $4 }
    /Expected failures/ { expected = 1; next }
    expected && /^  ~ / { expected_failures++ }
    expected && !/^  ~ / && NF { expected = 0 }
    END {
      printf "==> protocol %s: %d of %d scenarios passed, %d checks passed, %d failed; %d scenarios expected to fail\n",
        version, passed, scenarios, checks, failed_checks, expected_failures
    }' "$2" >&2
}

failed=0
rm -rf "$DIR/results"
for version in "${VERSIONS[@]}"; do
  log "client conformance, protocol $version"
  if ! "$NODE" "$SUITE" client --command "$CLIENT" --suite all --spec-version "$version" \
    --expected-failures "$PINS/expected-failures.yml" -o "$DIR/results/$version" \
    >"$DIR/results-$version.log" 2>&1; then
    failed=1
    sed -n '/=== SUITE SUMMARY ===/,$p' "$DIR/results-$version.log" >&2
    log "protocol $version: unexpected results (full log: $DIR/results-$version.log)"
  fi
  summarize "$version" "$DIR/results-$version.log"
done

"$NODE" "$SUITE" list >"$DIR/scenarios.txt"
python3 "$PINS/table.py" "$DIR/scenarios.txt" "$DIR/results" "${VERSIONS[@]}" >"$DIR/results/table.md"
if [ "${1:-}" = "--table" ]; then
  cat "$DIR/results/table.md"
fi
[ "$failed" = 0 ] || exit 1
log "client conformance: every scenario as expected"
