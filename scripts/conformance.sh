#!/usr/bin/env bash
# Runs the official MCP conformance suite (pinned in tests/conformance/package.json, with the
# Node >= 22 it needs, both from npm) for protocol versions 2025-11-25 and 2026-07-28: its client
# scenarios against `switchboard conformance-client`, and the server scenarios that need no
# reference server's own tools against the daemon's aggregated HTTP endpoint (token waived: the
# suite cannot send headers; a stdio fixture behind it). Fails on any failed scenario outside
# tests/conformance/expected-failures.yml and on any listed scenario that passes. Writes Markdown
# tables of every client scenario to $DIR/results/table.md and of the server scenarios run to
# $DIR/results/server-table.md (both printed with --table), the README's conformance tables.
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
cargo build --locked --quiet -p switchboard --bin switchboard -p switchboard-fixture --bin switchboard-fixture
CLIENT="$CARGO_TARGET_DIR/debug/switchboard conformance-client"
SERVER_SCENARIOS=(server-initialize server-session-lifecycle server-stateless ping tools-list
  dns-rebinding-protection http-header-validation http-custom-header-server-validation caching)

# One line per protocol version from the suite's summary: scenarios and checks passed, and
# how many scenarios failed as expected (those expected-failures.yml lists).
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
[ "$failed" = 0 ] || exit 1
log "client conformance: every scenario as expected"

# The server side: a daemon for a config dir of its own, one stdio fixture behind it, its
# endpoint on a free loopback port (read off its stderr).
work="$(mktemp -d)"
daemon=""
trap '[ -n "$daemon" ] && kill "$daemon" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
sb="$CARGO_TARGET_DIR/debug/switchboard"
"$sb" --config-dir "$work" registry add fixture --command "$CARGO_TARGET_DIR/debug/switchboard-fixture" \
  --arg --stdio --arg --tools --arg 3 --arg --header-param --arg Region >/dev/null
XDG_RUNTIME_DIR="$work" "$sb" --config-dir "$work" sync --http 127.0.0.1:0 --http-without-token \
  >/dev/null 2>"$work/daemon.log" &
daemon=$!
url=""
for _ in $(seq 200); do
  url="$(sed -n 's/^mcp: \(http[^ ]*\).*/\1/p' "$work/daemon.log")"
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/daemon.log" >&2; log "the daemon did not start its MCP endpoint"; exit 1; }
for version in "${VERSIONS[@]}"; do
  log "server conformance, protocol $version"
  out="$DIR/results/server-$version"
  mkdir -p "$out"
  for scenario in "${SERVER_SCENARIOS[@]}"; do
    if ! "$NODE" "$SUITE" server --url "$url" --scenario "$scenario" --spec-version "$version" \
      --expected-failures "$PINS/expected-failures.yml" >"$out/$scenario.log" 2>&1; then
      failed=1
      tail -n 20 "$out/$scenario.log" >&2
      log "server scenario $scenario, protocol $version: unexpected result (log: $out/$scenario.log)"
    fi
  done
done
python3 "$PINS/server_table.py" "$DIR/results" "${SERVER_SCENARIOS[@]}" >"$DIR/results/server-table.md"
cat "$DIR/results/server-summary.txt" >&2
if [ "${1:-}" = "--table" ]; then
  cat "$DIR/results/table.md"
  echo
  cat "$DIR/results/server-table.md"
fi
[ "$failed" = 0 ] || exit 1
log "server conformance: every scenario as expected"
