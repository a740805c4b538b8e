#!/usr/bin/env bash
# Installs the peers `cargo bench --bench endpoint` runs beside Switchboard, pinned: npm mcp-hub
# (aggregates behind a legacy-SSE endpoint) and PyPI fastmcp (its proxy), into
# $SWITCHBOARD_BENCH_PEERS (default ~/.cache/switchboard/bench-peers). Quick when they are
# already there. Prints the directory (and nothing else) on stdout.
. "$(dirname "$0")/common.sh"

MCP_HUB_VERSION=4.2.1
FASTMCP_VERSION=4.2.3
DIR="${SWITCHBOARD_BENCH_PEERS:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/bench-peers}"
mkdir -p "$DIR"

if ! grep -q "\"version\": \"$MCP_HUB_VERSION\"" "$DIR/npm/node_modules/mcp-hub/package.json" 2>/dev/null; then
  log "installing mcp-hub@$MCP_HUB_VERSION"
  npm install --prefix "$DIR/npm" --no-audit --no-fund --loglevel=error "mcp-hub@$MCP_HUB_VERSION" >&2
fi
installed="$("$DIR/venv/bin/python" -m pip show fastmcp 2>/dev/null | sed -n 's/^Version: //p' || true)"
if [ "$installed" != "$FASTMCP_VERSION" ]; then
  log "installing fastmcp==$FASTMCP_VERSION"
  python3 -m venv "$DIR/venv" >&2
  "$DIR/venv/bin/python" -m pip install --quiet --disable-pip-version-check "fastmcp==$FASTMCP_VERSION" >&2
fi
echo "$DIR"
