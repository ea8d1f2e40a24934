"""Faults in what an endpoint answers with a 200: the answers a careless or hostile backend sends. Each takes the
emulator's real answer and spoils it; the SDK must turn every one into a typed error (or keep only what is sound),
never into a success that fails later.

    emulator.fail("images.generate", "truncated_image")
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

ANSWER_FAULTS = (
    "malformed_json",  # a 200 whose body is cut-off JSON
    "json_list",  # a 200 whose JSON is a list, not the object the API documents
    "html",  # a 200 with an HTML page, as a captive portal or a misconfigured proxy answers
    "truncated_image",  # the image's bytes cut in half
    "junk_image",  # a valid PNG header followed by junk
    "bomb_image",  # a small PNG that declares 50,000 x 50,000 pixels
    "extra_images",  # ten images whatever n was asked for
    "no_images",  # a 200 with an empty data list
    "no_id",  # a Replicate prediction without its id (the prediction exists all the same)
)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A few hundred bytes that declare a picture of ``width`` x ``height`` (a decompression bomb)."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + _png_chunk(b"IEND", b"")


def _spoil_image(kind: str, data: bytes) -> bytes:
    if kind == "truncated_image":
        return data[: max(40, len(data) // 2)]
    if kind == "junk_image":
        return data[:33] + bytes(range(256)) * 8  # the signature and IHDR, then noise
    return bomb_png()


def spoil(kind: str, status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """The answer ``kind`` makes of a real one (status, headers, body)."""
    if status not in (200, 201):
        return status, headers, body
    if kind == "malformed_json":
        return status, {"Content-Type": "application/json"}, body[: max(1, len(body) // 2)]
    if kind == "html":
        return status, {"Content-Type": "text/html"}, b"<!doctype html><html><body><h1>Welcome to the Wi-Fi</h1></body></html>"
    document: Any = json.loads(body)
    if kind == "json_list":
        return status, headers, json.dumps([document]).encode()
    if kind == "no_id" and isinstance(document, dict):
        document.pop("id", None)
        return status, headers, json.dumps(document).encode()
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        return status, headers, body
    if kind == "no_images":
        document["data"] = []
    elif kind == "extra_images":
        document["data"] = (data * 10)[:10]
    else:
        for item in data:
            if "b64_json" in item:
                item["b64_json"] = base64.b64encode(_spoil_image(kind, base64.b64decode(item["b64_json"]))).decode()
    return status, headers, json.dumps(document).encode()
