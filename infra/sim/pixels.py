"""Real, tiny media bytes: a baseline JPEG, a PNG and an MP4 header, generated without Pillow.

The JPEG encoder only handles images made of flat 8x8 blocks: every block has a DC coefficient and
no AC energy, so each block is "DC difference + end-of-block". That is still a standard baseline JPEG
that any decoder accepts, and it keeps the simulator free of imaging dependencies.
"""

from __future__ import annotations

import functools
import struct
import zlib

_DC_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)  # the standard luminance DC table
_DC_VALS = tuple(range(12))
_AC_BITS = (1,) + (0,) * 15  # a one-symbol AC table: only end-of-block (0x00) is ever coded
_AC_VALS = (0,)


def _canonical_codes(bits: tuple[int, ...], vals: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    codes: dict[int, tuple[int, int]] = {}
    code, k = 0, 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[vals[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


class _BitWriter:
    __slots__ = ("acc", "nbits", "out")

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.nbits = 0

    def write(self, value: int, length: int) -> None:
        for i in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.nbits += 1
            if self.nbits == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)  # byte stuffing inside entropy-coded data
                self.acc, self.nbits = 0, 0

    def flush(self) -> bytes:
        if self.nbits:
            self.write((1 << (8 - self.nbits)) - 1, 8 - self.nbits)  # pad with one-bits
        return bytes(self.out)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", marker, len(payload) + 2) + payload


def _ycbcr(r: int, g: int, b: int) -> tuple[int, int, int]:
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return round(y), round(cb), round(cr)


def _magnitude(value: int) -> tuple[int, int]:
    """JPEG (category, extra bits) for a DC difference."""
    category = abs(value).bit_length()
    bits = value if value >= 0 else value + (1 << category) - 1
    return category, bits


def encode_jpeg(blocks: list[list[tuple[int, int, int]]]) -> bytes:
    """Encode a grid of flat 8x8 RGB blocks (rows of colours) as a baseline 4:4:4 JPEG."""
    rows, cols = len(blocks), len(blocks[0])
    dc = _canonical_codes(_DC_BITS, _DC_VALS)
    ac = _canonical_codes(_AC_BITS, _AC_VALS)
    writer = _BitWriter()
    previous = [0, 0, 0]
    for row in blocks:
        for rgb in row:
            for comp, level in enumerate(_ycbcr(*rgb)):
                coefficient = 8 * (level - 128)  # DC of a flat block with an all-ones quant table
                category, extra = _magnitude(coefficient - previous[comp])
                previous[comp] = coefficient
                code, length = dc[category]
                writer.write(code, length)
                if category:
                    writer.write(extra, category)
                code, length = ac[0]
                writer.write(code, length)
    components = b"".join(bytes((i, 0x11, 0)) for i in (1, 2, 3))
    dht = bytes((0x00, *_DC_BITS, *_DC_VALS)) + bytes((0x10, *_AC_BITS, *_AC_VALS))
    return b"".join(
        (
            b"\xff\xd8",
            _segment(0xFFE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xFFDB, b"\x00" + b"\x01" * 64),
            _segment(0xFFC0, struct.pack(">BHHB", 8, rows * 8, cols * 8, 3) + components),
            _segment(0xFFC4, dht),
            _segment(0xFFDA, b"\x03" + b"".join(bytes((i, 0)) for i in (1, 2, 3)) + b"\x00\x3f\x00"),
            writer.flush(),
            b"\xff\xd9",
        )
    )


@functools.lru_cache(maxsize=64)
def sample_jpeg(seed: int = 0, size_blocks: int = 4) -> bytes:
    """A small gradient JPEG (32x32 by default) whose colours depend on `seed`."""
    base = (seed * 97) % 200
    blocks = [
        [
            ((base + 40 * x) % 256, (60 + 30 * y) % 256, (180 + seed * 13 + 10 * (x + y)) % 256)
            for x in range(size_blocks)
        ]
        for y in range(size_blocks)
    ]
    return encode_jpeg(blocks)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.lru_cache(maxsize=8)
def sample_png(width: int = 16, height: int = 16) -> bytes:
    """A small RGB gradient PNG."""
    raw = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 16 % 256, y * 16 % 256, 128))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def sample_mp4(seed: int = 0) -> bytes:
    """An ISO-BMFF header (ftyp box) plus filler: enough for content sniffing and byte-exact round trips."""
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 512) + b"isomiso2"
    filler = bytes((seed + i) % 256 for i in range(2048))
    return ftyp + struct.pack(">I", 8 + len(filler)) + b"mdat" + filler


def sniff_mime(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"
