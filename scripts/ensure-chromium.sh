#!/usr/bin/env bash
# Install Debian's headless Chromium and its WebDriver when missing (needs root and apt): the browser
# tests (tests/web) drive them through Selenium; no browser is ever downloaded from elsewhere.
# Without them the browser tests skip visibly, unless AUTORATER_REQUIRE_BROWSER is set (CI).
set -uo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "[ensure-chromium] installing chromium and chromium-driver from Debian" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) >&2 \
    || echo "[ensure-chromium] apt-get install chromium chromium-driver failed" >&2
fi
if ! { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }; then
  echo "[ensure-chromium] no chromium/chromedriver: the browser tests will skip" >&2
  [ -z "${AUTORATER_REQUIRE_BROWSER:-}" ] || exit 3
fi
exit 0
