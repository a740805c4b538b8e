"""Draws the app icon and the four tray states as RGBA PNGs (no image library needed):
python3 icons/make.py. The tray icons are a dot in the state's colour inside a ring, readable on
light and dark panels."""

import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def png(path, size, pixel):
    rows = b"".join(
        b"\0" + b"".join(bytes(pixel(x + 0.5, y + 0.5, size)) for x in range(size))
        for y in range(size)
    )

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                  + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def coverage(distance, edge):
    """Anti-aliased coverage of a pixel whose centre is `distance` from a shape's edge."""
    return max(0.0, min(1.0, edge - distance + 0.5))


def tray(rgb):
    def pixel(x, y, size):
        c = size / 2
        d = math.hypot(x - c, y - c)
        ring = coverage(abs(d - size * 0.42), size * 0.06)  # white-edged ring for dark panels
        dot = coverage(d, size * 0.30)
        alpha = max(ring, dot)
        if alpha == 0:
            return (0, 0, 0, 0)
        colour = rgb if dot >= ring else (250, 250, 250)
        return (*colour, round(alpha * 255))
    return pixel


def app(x, y, size):
    """A rounded square with a 2x2 grid of sockets: a switchboard."""
    c = size / 2
    half = size * 0.44
    corner = size * 0.16
    qx, qy = max(abs(x - c) - (half - corner), 0), max(abs(y - c) - (half - corner), 0)
    body = coverage(math.hypot(qx, qy), corner)
    if body == 0:
        return (0, 0, 0, 0)
    for sx in (0.34, 0.66):
        for sy in (0.34, 0.66):
            if math.hypot(x - sx * size, y - sy * size) < size * 0.09:
                return (240, 244, 250, round(body * 255))
    return (37, 99, 235, round(body * 255))


STATES = {"healthy": (22, 163, 74), "degraded": (217, 119, 6), "down": (220, 38, 38),
          "idle": (120, 120, 128)}
for state, rgb in STATES.items():
    png(os.path.join(HERE, f"tray-{state}.png"), 64, tray(rgb))
png(os.path.join(HERE, "icon.png"), 256, app)
for size in (32, 128):
    png(os.path.join(HERE, f"{size}x{size}.png"), size, app)
