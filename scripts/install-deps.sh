#!/usr/bin/env bash
# Installs the Debian (12, bookworm) packages needed to build Orbit and run its tests.
# Idempotent: only missing packages are installed, and `apt-get update` runs only then.
# Runs apt-get directly as root, through sudo otherwise.
#
#   scripts/install-deps.sh            build + test dependencies (what `make test` needs)
#   scripts/install-deps.sh --build    build dependencies only (what `make run` needs)
#   scripts/install-deps.sh --dry-run  only print what would be installed
#
# The Rust toolchain itself (1.95, edition 2024) comes from rustup, not from apt.
set -euo pipefail

mode=all
dry_run=0
for arg in "$@"; do
    case "$arg" in
        --build) mode=build ;;
        --all) mode=all ;;
        --dry-run|-n) dry_run=1 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "install-deps: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

# Compiling the app (native audio, bundled C code).
build_pkgs=(build-essential pkg-config cmake libasound2-dev
    # The window loads X11/Wayland and OpenGL at run time (eframe/glow).
    libx11-6 libx11-xcb1 libxcb1 libxcursor1 libxi6 libxrender1 libxkbcommon0 libxkbcommon-x11-0
    libgl1 libglx-mesa0 libgl1-mesa-dri espeak-ng)
# Real SIP peers and audio tools used by the integration tests (tests/common/),
# packet capture to inspect RTP, and a virtual X server + ImageMagick for GUI tests.
test_pkgs=(
    kamailio kamailio-sqlite-modules
    baresip-core
    linphone-cli
    sip-tester
    sox espeak-ng
    tshark
    xvfb imagemagick
    desktop-file-utils
    # A session bus and a Secret Service for the keyring round-trip test, a
    # notification-free session for the "no daemon" path.
    dbus gnome-keyring
    # Snapshot images of the window (egui_kittest + wgpu on Mesa's software renderers).
    mesa-vulkan-drivers libegl-mesa0 libgbm1 libgl1-mesa-dri
    # Packaging tests (tests/packaging.rs): xdg-mime asks who handles sip:, xmllint checks
    # the Windows/macOS recipes; rsvg-convert renders the icon (packaging/make-icons.sh).
    xdg-utils libxml2-utils librsvg2-bin
)

pkgs=("${build_pkgs[@]}")
if [[ $mode == all ]]; then
    pkgs+=("${test_pkgs[@]}")
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: this script needs a Debian/Ubuntu system (dpkg + apt-get)." >&2
    echo "install-deps: please install the equivalents of: ${pkgs[*]}" >&2
    exit 1
fi

missing=()
for p in "${pkgs[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [[ $status != installed ]]; then
        missing+=("$p")
    fi
done

# cargo-deb builds the .deb (tests/packaging.rs). Not a Debian package: installed with
# cargo into ~/.cargo/bin (about 80 s on 2 cores), once. Pinned: newer releases may need a
# newer Rust than this project's toolchain.
install_cargo_deb() {
    [[ $mode == all ]] || return 0
    if command -v cargo-deb >/dev/null 2>&1 || [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo-deb ]]; then
        return 0
    fi
    echo "install-deps: installing cargo-deb (cargo install cargo-deb --version 3.8.0 --locked)"
    if ((dry_run)); then
        return 0
    fi
    cargo install cargo-deb --version 3.8.0 --locked
}

if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#pkgs[@]} packages already installed (${mode})."
    install_cargo_deb
    exit 0
fi

echo "install-deps: installing: ${missing[*]}"
if ((dry_run)); then
    install_cargo_deb
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-deps: not root and sudo is not available; as root run:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=600)
export DEBIAN_FRONTEND=noninteractive

# tshark: answer wireshark-common's "should non-superusers capture?" question up front.
for p in "${missing[@]}"; do
    if [[ $p == tshark ]]; then
        echo "wireshark-common wireshark-common/install-setuid boolean false" \
            | "${as_root[@]}" debconf-set-selections
    fi
done

"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=600
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${apt_opts[@]}" "${missing[@]}"

echo "install-deps: installed: ${missing[*]}"
install_cargo_deb
