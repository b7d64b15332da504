#!/usr/bin/env bash
# Regenerates the app icons from icon.mvg (ImageMagick 6; drawn at 2x, then downscaled).
# `./generate.sh icns` regenerates only icon.icns.
set -euo pipefail
cd "$(dirname "$0")"
if [ "${1:-}" != icns ]; then
  convert -size 1024x1024 xc:none -draw "scale 2,2 $(grep -v "^#" icon.mvg)" -resize 512x512 png32:icon.png
  convert icon.png -resize 256x256 png32:128x128@2x.png
  convert icon.png -resize 128x128 png32:128x128.png
  convert icon.png -resize 32x32 png32:32x32.png
  convert icon.png -define icon:auto-resize=256,128,64,48,32,16 icon.ico
fi
# macOS icon.icns: ImageMagick 6 cannot write icns, so icns.py packs PNGs (16 to 1024 px; the
# 1024 one is drawn at 2x too, from 2048). No date chunks, so the same input gives the same bytes.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
png="-define png:exclude-chunks=date,time png32:"
convert -size 2048x2048 xc:none -draw "scale 4,4 $(grep -v "^#" icon.mvg)" -resize 1024x1024 $png"$tmp/1024.png"
for px in 512 256 128 64 32 16; do
  convert "$tmp/1024.png" -resize "${px}x${px}" $png"$tmp/$px.png"
done
python3 icns.py "$tmp" icon.icns
