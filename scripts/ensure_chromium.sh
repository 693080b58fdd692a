#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests when it is missing and we may (root + apt).
set -u
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> Installing Debian's chromium for the browser tests (apt-get)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "!! Could not install chromium; the browser tests will say so."
else
  echo "!! /usr/bin/chromium is missing and apt-get is not usable here; the browser tests will say so."
fi
exit 0
