#!/usr/bin/env python3
"""Packs PNG files into a macOS .icns (ImageMagick 6 cannot write icns). Stdlib only.

    icns.py DIR OUT.icns   reads DIR/<px>.png for px in 16 32 64 128 256 512 1024, writes OUT.icns
    icns.py --check FILE   parses FILE back and lists its entries (exit 1 if malformed)

Format: b"icns" + u32 BE total length, then entries: 4-byte type + u32 BE length (including this
8-byte header) + data. Every entry here is a PNG, under the PNG-capable types in TYPES (macOS 10.7+).
"""
import struct
import sys
from pathlib import Path

# type -> pixel size of the PNG it holds (@2x types hold the doubled size).
TYPES = [
    (b"icp4", 16),    # 16x16
    (b"ic11", 32),    # 16x16@2x
    (b"icp5", 32),    # 32x32
    (b"ic12", 64),    # 32x32@2x
    (b"ic07", 128),   # 128x128
    (b"ic13", 256),   # 128x128@2x
    (b"ic08", 256),   # 256x256
    (b"ic14", 512),   # 256x256@2x
    (b"ic09", 512),   # 512x512
    (b"ic10", 1024),  # 512x512@2x
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (the first chunk, right after the magic)."""
    if data[:8] != PNG_MAGIC or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", data[16:24])


def build(src: Path, out: Path) -> None:
    body = b""
    for kind, px in TYPES:
        data = (src / f"{px}.png").read_bytes()
        if png_size(data) != (px, px):
            raise ValueError(f"{px}.png is {png_size(data)}, expected {px}x{px}")
        body += kind + struct.pack(">I", 8 + len(data)) + data
    out.write_bytes(b"icns" + struct.pack(">I", 8 + len(body)) + body)


def check(path: Path) -> list[tuple[str, int, int]]:
    """Parses an icns made of PNG entries; returns (type, width, height) per entry."""
    data = path.read_bytes()
    if data[:4] != b"icns" or struct.unpack(">I", data[4:8])[0] != len(data):
        raise ValueError("bad icns header or total length")
    entries, pos = [], 8
    expected = dict(TYPES)
    while pos < len(data):
        kind, length = data[pos:pos + 4], struct.unpack(">I", data[pos + 4:pos + 8])[0]
        if length < 8 or pos + length > len(data):
            raise ValueError(f"entry {kind!r} at {pos} overruns the file")
        w, h = png_size(data[pos + 8:pos + length])
        if expected.get(kind) != w or w != h:
            raise ValueError(f"entry {kind!r} holds {w}x{h}, expected {expected.get(kind)}")
        entries.append((kind.decode(), w, h))
        pos += length
    return entries


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        for kind, w, h in check(Path(sys.argv[2])):
            print(f"{kind} {w}x{h}")
    elif len(sys.argv) == 3:
        build(Path(sys.argv[1]), Path(sys.argv[2]))
    else:
        sys.exit(__doc__)
