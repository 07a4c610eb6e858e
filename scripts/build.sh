#!/usr/bin/env bash
# Installs dependencies, then builds and installs the fdwshard extension with PGXS.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PG_CONFIG=${FDWSHARD_PG_BIN:-/usr/lib/postgresql/15/bin}/pg_config
echo "== building fdwshard"
make -s -f Makefile.pgxs PG_CONFIG=$PG_CONFIG -j"$(nproc)" >/dev/null
$SUDO make -s -f Makefile.pgxs PG_CONFIG=$PG_CONFIG install >/dev/null
echo "== installed into $($PG_CONFIG --pkglibdir) and $($PG_CONFIG --sharedir)/extension"
