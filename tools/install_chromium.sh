#!/usr/bin/env bash
# Install headless Chromium from Debian (package chromium) for the docs' browser test
# (tests/test_docs.py). Never fails the build: without chromium and apt-get the test skips
# with a reason.
set -u
for b in chromium chromium-browser google-chrome; do command -v "$b" >/dev/null 2>&1 && exit 0; done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: apt-get not found; chromium not installed. The docs browser test will be skipped."
  exit 0
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo -n"
echo "installing chromium (apt package chromium, ~100 MB) for the docs browser test…"
if ! ($sudo apt-get install -y -qq chromium >/dev/null 2>&1 || \
      ($sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq chromium >/dev/null 2>&1)); then
  echo "note: could not install chromium with apt-get (no root or no network);"
  echo "      the docs browser test will fail until chromium is installed."
fi
exit 0
