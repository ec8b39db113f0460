"""What an uploaded file is, read from its bytes (never from its name or the browser's word).

Documents (PDF, DOCX, PPTX, XLSX, HTML) are what `chatui.documents` recognises, and are text
to a model. Images are what Pillow recognises and can read through as PNG, JPEG, GIF or WebP
(formats every browser shows and vision models take); text is UTF-8 without NUL or other
binary control characters. Anything else is refused with a readable message. Also: chat-ui's
MIME patterns (`multimodalAcceptedMimetypes`, e.g. ``image/*``) and the framing of a text file
in a prompt.

Pure functions over bytes; must not import models, services, views or
the websocket layer (consumers, routing, `chatui.streaming.socket`, `chatui.layers`).
"""

from __future__ import annotations

import io
import mimetypes
import re
import warnings
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from PIL import Image, UnidentifiedImageError

from chatui import documents
from chatui.errors import ChatError

UNSUPPORTED_FILE = (
    "{name} cannot be attached: only text files (UTF-8), documents (PDF, Word, PowerPoint, "
    "Excel, HTML) and images (PNG, JPEG, GIF, WebP) can."
)
BROKEN_IMAGE = "{name} is not a readable image."
FILE_TOO_LARGE = "{name} is too large ({size}); the limit for {kind} is {limit}."
EMPTY_FILE = "{name} is empty."

IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
MAX_IMAGE_PIXELS = 50_000_000  # beyond this a small file may unpack into gigabytes
# C0 controls that never occur in text (tab, newlines, form feed and ESC do).
_BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
# Text files are served and described as one of these (others as text/plain).
_TEXT_MIMES = ("text/", "application/json", "application/xml", "application/javascript")

Kind = Literal["image", "text"]


@dataclass(frozen=True)
class Sniffed:
    """An accepted upload: `kind`, its MIME type, and for an image its size in pixels."""

    kind: Kind
    mime: str
    width: int = 0
    height: int = 0


def human_size(num_bytes: int) -> str:
    if num_bytes >= 1024 * 1024:
        return f"{num_bytes / (1024 * 1024):.1f} MB"
    if num_bytes >= 1024:
        return f"{num_bytes / 1024:.0f} KB"
    return f"{num_bytes} bytes"


def _image(data: bytes, name: str) -> Sniffed | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS)) as image:
                image_format, size = image.format, image.size
                if size[0] * size[1] > MAX_IMAGE_PIXELS:
                    raise ChatError(BROKEN_IMAGE.format(name=name))
                image.verify()
    except UnidentifiedImageError:
        return None
    except ChatError:
        raise
    except Exception:  # truncated or corrupt data, a decompression bomb
        raise ChatError(BROKEN_IMAGE.format(name=name)) from None
    return Sniffed("image", IMAGE_FORMATS[image_format or ""], size[0], size[1])


def decode_text(data: bytes) -> str | None:
    """The text of a UTF-8 file (a BOM dropped), or None when the bytes are not text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return None if _BINARY_CONTROLS.search(text) else text


def _text_mime(name: str) -> str:
    guessed = mimetypes.guess_type(name, strict=False)[0] or ""
    return guessed if guessed.startswith(_TEXT_MIMES) else "text/plain"


def sniff(data: bytes, name: str) -> Sniffed:
    """What `data` is, or a ChatError that says why it cannot be attached."""
    if not data:
        raise ChatError(EMPTY_FILE.format(name=name))
    image = _image(data, name)
    if image is not None:
        return image
    document = documents.document_mime(data, name)
    if document is not None:  # read as text (chatui.documents) when a prompt is built
        return Sniffed("text", document)
    if decode_text(data) is None:
        raise ChatError(UNSUPPORTED_FILE.format(name=name))
    return Sniffed("text", _text_mime(name))


def check_size(*, name: str, kind: str, size: int, limit: int) -> None:
    if size > limit:
        raise ChatError(
            FILE_TOO_LARGE.format(
                name=name,
                size=human_size(size),
                kind="images" if kind == "image" else "text files",
                limit=human_size(limit),
            ),
            status=413,
        )


def mime_accepted(mime: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """chat-ui's `multimodalAcceptedMimetypes` test: exact types or wildcards (``image/*``)."""
    return any(fnmatchcase(mime, pattern.strip().lower()) for pattern in patterns)


def clean_name(name: str) -> str:
    """A file name fit to show and store: its last path part, without control characters."""
    name = re.split(r"[\\/]", name or "")[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    return name[:200] or "file"


def frame_text_file(name: str, text: str) -> str:
    """A text file as it goes into a prompt: named, then fenced (a fence longer than any run
    of backticks in the file, and the extension as the fence's language)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    language = extension if extension.isalnum() else ""
    return f"File: {name}\n{fence}{language}\n{text.rstrip(chr(10))}\n{fence}"
