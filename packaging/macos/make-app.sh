#!/usr/bin/env bash
# Builds Orbit.app (on macOS): the release binary, Info.plist with the sip:/sips:/tel:
# URL types, and the icon. Output: target/macos/Orbit.app.
#
#   packaging/macos/make-app.sh                 # host architecture
#   TARGET=aarch64-apple-darwin packaging/macos/make-app.sh
#
# Needs Xcode's command line tools (iconutil, codesign). The bundle is signed ad hoc; for
# distribution sign with a Developer ID and notarize (see packaging/README.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
if [[ -n ${TARGET:-} ]]; then
    cargo build --release --target "$TARGET"
    bin="target/$TARGET/release/orbitphone"
else
    cargo build --release
    bin=target/release/orbitphone
fi

app=target/macos/Orbit.app
rm -rf "$app"
mkdir -p "$app/Contents/MacOS" "$app/Contents/Resources"
cp "$bin" "$app/Contents/MacOS/orbitphone"
sed "s/@VERSION@/$version/g" packaging/macos/Info.plist > "$app/Contents/Info.plist"
plutil -lint "$app/Contents/Info.plist"

# The icon: an .iconset rendered from the SVG when rsvg-convert is there (brew install
# librsvg), else scaled from the committed 256 px PNG with sips.
iconset=$(mktemp -d)/orbitphone.iconset
mkdir -p "$iconset"
render() { # size, output
    if command -v rsvg-convert >/dev/null 2>&1; then
        rsvg-convert -w "$1" -h "$1" assets/orbitphone.svg -o "$2"
    else
        sips -z "$1" "$1" assets/orbitphone-256.png --out "$2" >/dev/null
    fi
}
for size in 16 32 128 256 512; do
    render "$size" "$iconset/icon_${size}x${size}.png"
    render $((size * 2)) "$iconset/icon_${size}x${size}@2x.png"
done
iconutil -c icns "$iconset" -o "$app/Contents/Resources/orbitphone.icns"

codesign --force --sign - "$app"
# Make Launch Services read the URL types now (otherwise at the first launch).
/System/Library/Frameworks/CoreServices.framework/Frameworks/LaunchServices.framework/Support/lsregister -f "$app" || true
echo "built $app ($version)"
