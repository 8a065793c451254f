#!/usr/bin/env bash
# The browser the console's tests drive (tests/console/test_browser.py): Debian's Chromium and
# its chromedriver, installed with apt when missing (as scripts/db.sh installs PostgreSQL).
# Playwright's own browser download is not available on our machines; Debian's is. A Chinese
# font (WenQuanYi Zen Hei) too, or the screenshots of the zh-CN pages show empty boxes.
#
#   scripts/browser.sh ensure   install chromium + chromium-driver if missing; fail loudly if
#                               they cannot be installed (the browser tests are never skipped)
set -euo pipefail

log() { printf 'browser: %s\n' "$*" >&2; }
die() { printf 'browser: error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

present() {
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
    && [ -n "$(fc-list :lang=zh 2>/dev/null)" ]
}

case "${1:-}" in
  ensure)
    present && exit 0
    command -v apt-get >/dev/null 2>&1 \
      || die "chromium and chromedriver are missing and apt-get is not available: install Chromium and its chromedriver"
    log "installing chromium chromium-driver fonts-wqy-zenhei (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
      || die "apt-get update failed: the browser tests need chromium and chromium-driver"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-wqy-zenhei >/dev/null \
      || die "could not install chromium and chromium-driver: the browser tests need them"
    present || die "chromium, chromedriver or a Chinese font still not found after installing"
    ;;
  *) die "usage: scripts/browser.sh ensure" ;;
esac
