#!/usr/bin/env bash
# Installs what Vigil needs on a Debian 12 machine that has Rust: only what is missing,
# idempotently, as root or with sudo. Called by `make deps` (and so by `make test`).
set -euo pipefail

ORT_VERSION="${ORT_VERSION:-1.31.1}"
ORT_DIR="${ORT_DIR:-/usr/local/lib/vigil-onnxruntime}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "deps: not root and no sudo: run 'make deps' as root" >&2; exit 1
  fi
fi

PKGS=(
  pkg-config clang libclang-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  libavfilter-dev libavdevice-dev ffmpeg
  mosquitto mosquitto-clients socat
  libxml2-utils unzip python3-pip procps
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "deps: Debian packages present"
fi

# ONNX Runtime's shared library, from the PyPI wheel (Debian 12 has no package; ort's own
# download is not reachable). ort is built with load-dynamic; the agent finds the library
# through ORT_DYLIB_PATH or its config.
ORT_LIB="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"
if [ ! -f "$ORT_LIB" ]; then
  echo "deps: fetching onnxruntime $ORT_VERSION from PyPI"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download "onnxruntime==$ORT_VERSION" --no-deps --only-binary=:all: -q -d "$tmp"
  $SUDO mkdir -p "$ORT_DIR"
  $SUDO unzip -q -o -j "$tmp"/onnxruntime-"$ORT_VERSION"-*.whl 'onnxruntime/capi/libonnxruntime.so*' -d "$ORT_DIR"
  $SUDO ln -sf "$ORT_LIB" "$ORT_DIR/libonnxruntime.so"
else
  echo "deps: onnxruntime $ORT_VERSION present in $ORT_DIR"
fi
