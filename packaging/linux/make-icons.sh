#!/usr/bin/env bash
# Renders assets/orbitphone.svg to the PNG sizes the .deb installs into the hicolor theme.
# Needs rsvg-convert (Debian: librsvg2-bin). The PNGs are committed, so building the
# package does not need it; run this after editing the SVG.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
for size in 48 128 256; do
    rsvg-convert -w "$size" -h "$size" assets/orbitphone.svg -o "assets/orbitphone-${size}.png"
done
