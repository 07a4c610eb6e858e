#!/usr/bin/env bash
# Installs what building and testing fdwshard needs on Debian 12, skipping what is already there.
set -euo pipefail

packages=(postgresql-15 postgresql-server-dev-15 postgresql-contrib libxxhash-dev libpq-dev
          g++ make cmake googletest libgtest-dev util-linux iproute2)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	echo "== installing: ${missing[*]}"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
