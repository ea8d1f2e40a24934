"""Faults in what an endpoint answers with a 200: the answers a careless or hostile backend sends. Each takes the
emulator's real answer and spoils it; the SDK must turn every one into a typed error (or keep only what is sound),
never into a success that fails later.

    emulator.fail("images.generate", "truncated_image")
"""

from __future__ import annotations

import base64
import io
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
    "private_url",  # result URLs that point at a cloud metadata service (169.254.169.254)
    "wrong_size",  # pictures of half the width and height asked for
    "tiny_image",  # 1x1 pictures, whatever was asked for
)
# Faults in how a real answer arrives: the work is done, the answer is spoilt on its way.
DELIVERY_FAULTS = (
    "trickle",  # the body a few bytes at a time (``delay`` seconds apart): only a deadline ends the call
    "huge_body",  # a body of ``size`` bytes (default 300 MB) with no Content-Length, streamed until the client stops
    "huge_declared",  # a Content-Length of ``size`` bytes (default 300 MB) and a few of them
    "lost_answer",  # the work is done (a prediction created, images made), then the connection drops
    "redirect_private",  # a 302 to a private address (10.0.0.1)
    "not_found",  # a 404 (for a result file: expired, or never there)
)
# Every fault the emulator can put in each step of an image call, for ``Emulator.chaos``: with the OpenAI images
# endpoint and its result files, or with Replicate's models, predictions and output files.
CHAOS_OPENAI_IMAGES: dict[str, list[Any]] = {
    "images.generate": [
        "server_error", "unavailable", "rate_limit", "conflict", "drop", {"kind": "slow", "delay": 0.3},
        "malformed_json", "json_list", "html", "truncated_image", "junk_image", "bomb_image", "extra_images",
        "no_images", {"kind": "trickle", "delay": 0.05}, {"kind": "huge_declared", "size": 400_000_000},
        "lost_answer", "private_url", "wrong_size", "tiny_image",
    ],
    "files.get": [
        "not_found", "server_error", {"kind": "trickle", "delay": 0.05}, "redirect_private", "lost_answer", "html",
    ],
}  # fmt: skip
CHAOS_REPLICATE: dict[str, list[Any]] = {
    "replicate.models.get": ["server_error", "drop"],
    "replicate.predictions.create": [
        "server_error", "unavailable", "drop", "lost_answer", "malformed_json", "html", "no_id", "private_url",
        {"kind": "trickle", "delay": 0.05},
    ],
    "replicate.predictions.get": ["server_error", "drop", "malformed_json", {"kind": "trickle", "delay": 0.05}, "html"],
    "files.get": ["not_found", "server_error", {"kind": "trickle", "delay": 0.05}, "lost_answer", "redirect_private"],
}  # fmt: skip
DELIVERY_HEADER = "x-genai-emulator-delivery"  # how the handler must send an answer (never sent on the wire)
PRIVATE_URL = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"


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
    if kind in ("wrong_size", "tiny_image"):
        from PIL import Image

        picture = Image.open(io.BytesIO(data))
        size = (1, 1) if kind == "tiny_image" else (max(1, picture.width // 2), max(1, picture.height // 2))
        out = io.BytesIO()
        picture.resize(size).save(out, format=picture.format or "PNG")
        return out.getvalue()
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
    if kind == "private_url" and isinstance(document, dict):
        output = document.get("output")  # a Replicate prediction
        if isinstance(output, str):
            document["output"] = PRIVATE_URL
        elif isinstance(output, list):
            document["output"] = [PRIVATE_URL for _ in output]
        for item in document.get("data") or []:  # OpenAI images as URLs
            if isinstance(item, dict) and "url" in item:
                item["url"] = PRIVATE_URL
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


def delivered(kind: str, answer: tuple[int, dict[str, str], bytes], delay: float, size: int | None) -> tuple[int, dict[str, str], bytes]:
    """The real ``answer``, marked (or replaced) so that the handler sends it the way ``kind`` says."""
    status, headers, body = answer
    if kind == "not_found":
        return 404, {"Content-Type": "application/json"}, json.dumps({"detail": "Not found", "status": 404}).encode()
    if kind == "redirect_private":
        return 302, {"Location": "http://10.0.0.1/internal/secret.png", "Content-Type": "text/plain"}, b""
    how = {"trickle": f"trickle:{delay or 0.25}", "huge_body": f"huge:{size or 300_000_000}",
           "huge_declared": f"declared:{size or 300_000_000}", "lost_answer": "lost"}[kind]
    return status, {**headers, DELIVERY_HEADER: how}, body


def send(handler: Any, status: int, headers: dict[str, str], body: bytes) -> None:
    """Write an answer marked by :func:`delivered` (``handler`` is a BaseHTTPRequestHandler)."""
    import socket
    import time

    how = headers.pop(DELIVERY_HEADER, "")
    kind, _, value = how.partition(":")
    if kind == "lost":
        handler.close_connection = True
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return
    handler.send_response(status)
    for key, item in headers.items():
        handler.send_header(key, item)
    try:
        if kind == "trickle":
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.flush()
            for start in range(0, len(body), 16):
                handler.wfile.write(body[start : start + 16])
                handler.wfile.flush()
                time.sleep(float(value))
        elif kind == "huge":
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.close_connection = True
            block = b" " * (1 << 20)
            for _ in range(int(value) // len(block)):
                handler.wfile.write(block)
        else:  # "declared"
            handler.send_header("Content-Length", value)
            handler.end_headers()
            handler.close_connection = True
            handler.wfile.write(body[:64])
        handler.wfile.flush()
    except OSError:
        handler.close_connection = True  # the client stopped reading: as it should
