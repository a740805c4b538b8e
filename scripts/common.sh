# Sourced by the other scripts: strict mode, repo root, a build cache that outlives clones.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Builds are slow on small machines: keep one target dir outside the clone so a fresh clone (CI)
# reuses earlier work. Override with CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
log() { printf '==> %s\n' "$*" >&2; }
