#!/usr/bin/env bash
# What the test suite needs beyond the virtualenv: Debian's chromium (the browser tests drive it) and a
# Japanese font (so the screenshots under tests/browser/artifacts/ show text instead of boxes).
# `make test` and .ci/run run this first. It installs what is missing with apt-get when it can (root and
# apt-get present); otherwise it stops at once and prints the one command that installs them.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
if ! (command -v fc-list >/dev/null && fc-list :lang=ja | grep -q .); then
  missing+=(fonts-ipafont-gothic)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "Installing what the tests need: ${missing[*]}"
  if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; then
    exit 0
  fi
  echo "error: apt-get could not install ${missing[*]}." >&2
fi
echo "The tests need ${missing[*]}. Install them, then run the tests again:" >&2
echo "" >&2
echo "    sudo apt-get install -y ${missing[*]}" >&2
echo "" >&2
exit 1
