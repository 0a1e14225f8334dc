#!/usr/bin/env bash
# Screenshot of the real app window under Xvfb (needs Debian's xvfb, imagemagick, fonts-nanum).
# Usage: docs/screenshot.sh [QUERY] [OUT.png]
set -euo pipefail
query="${1:-간경화}"
out="${2:-docs/screenshot.png}"
Xvfb :97 -screen 0 1280x760x24 >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb $app 2>/dev/null || true' EXIT
sleep 1
DISPLAY=:97 QT_QPA_PLATFORM=xcb python -m gui --query "$query" &
app=$!
sleep "${WAIT:-25}"
DISPLAY=:97 import -window root -crop 1100x680+0+0 +repage "$out"
echo "wrote $out"
