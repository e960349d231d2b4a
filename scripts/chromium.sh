#!/usr/bin/env bash
# Installs Debian's Chromium (once) for the browser tests of the form and the dashboard.
# Nothing is downloaded from anywhere but Debian's package archive.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0
command -v apt-get >/dev/null 2>&1 \
  || die "Chromium is missing at $CHROMIUM: install Debian's chromium package"
[ "$(id -u)" = 0 ] \
  || die "Chromium is missing at $CHROMIUM: run 'sudo apt-get install chromium' once"
say "installing Debian's Chromium for the browser tests (once)"
{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
  >>"$LOGS/chromium-install.log" 2>&1 \
  || { tail -n 10 "$LOGS/chromium-install.log" >&2; die "apt-get could not install chromium"; }
