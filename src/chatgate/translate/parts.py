"""OpenAI content parts → Gemini parts: text, images, audio, files (spec §1.3).

- ``data:<mime>;base64,<b64>`` → ``inlineData`` (any MIME type: images, PDF, audio, video);
- ``gs://``, ``http(s)://`` URIs → ``fileData`` with a MIME type taken from the file
  extension (``image/*`` for an unrecognised image URL, as Vertex documents). URLs are passed
  to Google as they are, never fetched here;
- ``input_audio``: ``format`` ``wav``/``mp3`` → ``audio/wav``/``audio/mp3``; a full MIME type
  is used as given; ``data`` may be base64, a data URL or a URI;
- ``file``: ``file_data`` (a data URL or base64) or ``file_id`` (a URI);
- ``detail`` → media resolution: part-level on Gemini 3, request-level before (the caller
  checks that one request uses one detail).
"""

from __future__ import annotations

import base64
import urllib.parse
from dataclasses import dataclass

from chatgate.errors import InvalidRequest, PayloadTooLarge
from chatgate.protocols import gemini as g
from chatgate.protocols import openai as o

# Gemini's limit on inline data in one request (decoded bytes); base64 adds a third.
INLINE_LIMIT = 20 * 1024 * 1024

_URI_SCHEMES = ("gs://", "https://", "http://")

_BY_EXTENSION = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
    "bmp": "image/bmp",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "csv": "text/csv",
    "html": "text/html",
    "md": "text/md",
    "json": "application/json",
    "xml": "text/xml",
    "wav": "audio/wav",
    "mp3": "audio/mp3",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "ogg": "audio/ogg",
    "m4a": "audio/m4a",
    "opus": "audio/opus",
    "aiff": "audio/aiff",
    "mp4": "video/mp4",
    "mov": "video/mov",
    "mpeg": "video/mpeg",
    "mpg": "video/mpg",
    "webm": "video/webm",
    "avi": "video/avi",
    "wmv": "video/wmv",
    "flv": "video/x-flv",
    "3gp": "video/3gpp",
}

# Gemini's media resolutions, by the names OpenAI's ``detail`` and Google's extension use.
RESOLUTIONS = {"low": "MEDIA_RESOLUTION_LOW", "medium": "MEDIA_RESOLUTION_MEDIUM", "high": "MEDIA_RESOLUTION_HIGH"}


def mime_from_uri(uri: str, default: str | None) -> str | None:
    path = urllib.parse.urlsplit(uri).path
    _, dot, ext = path.rpartition(".")
    return _BY_EXTENSION.get(ext.lower(), default) if dot else default


@dataclass(slots=True)
class Media:
    """What a message's parts add up to: inline bytes so far and the ``detail`` values seen."""

    inline_bytes: int = 0
    details: set[str] | None = None

    def add_inline(self, data: str, param: str) -> None:
        self.inline_bytes += len(data) * 3 // 4
        if self.inline_bytes > INLINE_LIMIT:
            raise PayloadTooLarge(
                f"inline media exceeds Gemini's {INLINE_LIMIT // (1024 * 1024)} MB limit; "
                "pass large files as gs:// URIs instead",
                param=param,
            )


def _data_url(url: str, param: str) -> tuple[str, str]:
    """``data:<mime>[;…][;base64],<data>`` → (mime, base64 data)."""
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise InvalidRequest("malformed data URL: no comma", param=param)
    fields = header.split(";")
    mime = fields[0] or "text/plain"
    if "base64" in fields[1:]:
        return mime, payload.strip()
    return mime, base64.b64encode(urllib.parse.unquote_to_bytes(payload)).decode("ascii")


def blob_or_uri(data: str, mime: str | None, param: str, media: Media, *, default_mime: str | None) -> g.Part:
    """One piece of media given as a data URL, a URI or (with a known MIME type) base64."""
    if data.startswith("data:"):
        data_mime, payload = _data_url(data, param)
        media.add_inline(payload, param)
        return g.Part(inline_data=g.Blob(mime_type=data_mime, data=payload))
    if data.startswith(_URI_SCHEMES):
        return g.Part(file_data=g.FileData(mime_type=mime or mime_from_uri(data, default_mime), file_uri=data))
    if mime is None:
        raise InvalidRequest("expected a data: URL, or a gs:// or http(s):// URI", param=param)
    media.add_inline(data, param)
    return g.Part(inline_data=g.Blob(mime_type=mime, data=data))


def _audio_mime(fmt: str) -> str:
    return fmt if "/" in fmt else f"audio/{fmt.lower()}"


def user_part(part: o.UserPart, param: str, media: Media, *, part_level_detail: bool) -> g.Part | None:
    if isinstance(part, o.TextPart):
        out = g.Part(text=part.text) if part.text else None
    elif isinstance(part, o.ImagePart):
        image = part.image_url
        url = image if isinstance(image, str) else image.url
        out = blob_or_uri(url, None, f"{param}.image_url", media, default_mime="image/*")
        detail = None if isinstance(image, str) else image.detail
        if isinstance(detail, str) and detail in RESOLUTIONS:
            if part_level_detail:
                out.media_resolution = g.MediaResolution(level=RESOLUTIONS[detail])
            else:
                media.details = (media.details or set()) | {detail}
    elif isinstance(part, o.AudioPart):
        audio = part.input_audio
        out = blob_or_uri(audio.data, _audio_mime(audio.format), f"{param}.input_audio.data", media, default_mime=None)
    elif isinstance(part, o.FilePart):
        out = _file_part(part.file, param, media)
    else:  # pragma: no cover - the decoder admits no other part here
        raise InvalidRequest("unexpected content part", param=param)
    return out


def _file_part(file: o.File, param: str, media: Media) -> g.Part:
    name = file.filename if isinstance(file.filename, str) else ""
    mime = mime_from_uri(name, None) if name else None
    if isinstance(file.file_data, str):
        part = blob_or_uri(
            file.file_data, mime or "application/pdf", f"{param}.file.file_data", media, default_mime=None
        )
    elif isinstance(file.file_id, str):
        if not file.file_id.startswith(_URI_SCHEMES):
            raise InvalidRequest(
                "file_id must be a gs:// or https:// URI (chatgate keeps no uploaded files)",
                param=f"{param}.file.file_id",
            )
        part = g.Part(
            file_data=g.FileData(
                mime_type=mime or mime_from_uri(file.file_id, "application/pdf"), file_uri=file.file_id
            )
        )
    else:
        raise InvalidRequest("a file part needs file_data or file_id", param=f"{param}.file")
    if name and part.file_data is not None:
        part.file_data.display_name = name
    return part
