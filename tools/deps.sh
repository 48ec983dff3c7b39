#!/bin/sh
# Install the Debian packages given as arguments that are not installed yet.
# Idempotent and quiet when nothing is missing.
missing=""
for p in "$@"; do
    s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
    case "$s" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
echo "pmprof: installing missing packages:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "pmprof: not root and no sudo: install these packages:$missing" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || exit 1
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null || exit 1
