#!/usr/bin/env bash
# Renders assets/orbitphone.svg to the PNG sizes the .deb installs into the hicolor theme,
# and the .ico of the Windows installer.
# Needs rsvg-convert (Debian: librsvg2-bin) and ImageMagick. The PNGs are committed, so building the
# package does not need it; run this after editing the SVG.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for size in 48 128 256; do
    rsvg-convert -w "$size" -h "$size" assets/orbitphone.svg -o "assets/orbitphone-${size}.png"
done
# The Windows installer's icon (packaging/windows/main.wxs), from the 256 px rendering (ImageMagick).
convert assets/orbitphone-256.png -define icon:auto-resize=256,48,32,16 assets/orbitphone.ico

