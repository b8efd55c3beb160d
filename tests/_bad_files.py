"""Hostile input files shared by the tests of the readers (images, masks, folders): not a test module."""
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def write_bomb_png(path: Path, side: int = 60000) -> Path:
    """A tiny PNG whose header claims ``side`` x ``side`` pixels (Pillow's DecompressionBombError)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)                    # 8-bit grey
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def write_truncated_jpeg(path: Path, size: int = 64, seed: int = 0) -> Path:
    """A JPEG of random pixels cut in the middle of its compressed data (Pillow's ``verify()`` passes)."""
    pixels = (np.random.default_rng(seed).random((size, size, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    raw = buffer.getvalue()
    path.write_bytes(raw[: len(raw) // 2])
    return path
