#!/usr/bin/env bash
# System packages Clipper needs, from Debian's archive. Shared by `make run`, .ci/run and the
# Dockerfile so the three cannot drift apart.
#   install-system-deps.sh            ffmpeg + redis-server (runtime), python3-venv and curl
#                                     (`make run` builds .venv; the README's examples use curl)
#   install-system-deps.sh --test     + chromium (browser test of the dashboard)
#   install-system-deps.sh --image    ffmpeg only (the container image; Redis runs in its own)
set -euo pipefail

pkgs=(ffmpeg redis-server python3-venv curl)
case "${1:-}" in
  --test) pkgs+=(chromium) ;;
  --image) pkgs=(ffmpeg) ;;
  "") ;;
  *) echo "usage: $0 [--test|--image]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "Clipper needs these system packages: ${missing[*]}" >&2
  echo "Install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
