#!/usr/bin/env bash
# Regenerates the app icons from icon.mvg (ImageMagick 6; drawn at 2x, then downscaled).
set -euo pipefail
cd "$(dirname "$0")"
convert -size 1024x1024 xc:none -draw "scale 2,2 $(grep -v "^#" icon.mvg)" -resize 512x512 png32:icon.png
convert icon.png -resize 256x256 png32:128x128@2x.png
convert icon.png -resize 128x128 png32:128x128.png
convert icon.png -resize 32x32 png32:32x32.png
convert icon.png -define icon:auto-resize=256,128,64,48,32,16 icon.ico
