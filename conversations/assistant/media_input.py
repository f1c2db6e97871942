"""How customers' voice notes, photos and documents read in the assistant's input.

- a transcribed voice note: "[áudio] <transcrição>"; one that could not be fetched or heard: a
  placeholder that says so, which the LLM (and the offline assistant) answers by asking the
  customer to type or send it again;
- a photo: "[imagem] <legenda>"; the photos of the turn's batch also as `input_image` parts
  (data URLs, the runtime setting's detail) next to that text. Older photos stay text only and
  are never sent again;
- a document: "[documento] <legenda e nome do arquivo>" (its bytes are for staff only).
"""

import base64

AUDIO_NOT_DOWNLOADED = "[áudio não pôde ser baixado]"
AUDIO_NOT_TRANSCRIBED = "[áudio não pôde ser transcrito]"
IMAGE_NOT_DOWNLOADED = "[imagem não pôde ser baixada]"
AUDIO = "[áudio]"
IMAGE = "[imagem]"
DOCUMENT = "[documento]"
STORED = "stored"  # Message.MediaStatus.STORED
FAILED = "failed"  # Message.MediaStatus.FAILED


def message_text(message) -> str:
    """A customer's message as the LLM reads it (text only; the batch's photos are added by
    user_content)."""
    kind, text = message.type, (message.text or "").strip()
    if kind == "audio":
        if message.transcript:
            return f"{AUDIO} {message.transcript.strip()}"
        return AUDIO_NOT_TRANSCRIBED if message.media_status == STORED else AUDIO_NOT_DOWNLOADED
    if kind == "image":
        label = IMAGE_NOT_DOWNLOADED if message.media_status == FAILED else IMAGE
        return f"{label} {text}".strip()
    if kind == "document":
        return f"{DOCUMENT} {text}".strip()
    return text or f"[{kind}]"


def data_url(data: bytes, mime_type: str) -> str:
    return f"data:{mime_type};base64,{base64.b64encode(data).decode('ascii')}"


def user_content(text: str, images: list[tuple[bytes, str]], detail: str) -> str | list[dict]:
    """The Responses API's content of a user message: the text, or the text and its photos."""
    if not images:
        return text
    parts: list[dict] = [{"type": "input_text", "text": text}]
    for data, mime_type in images:
        parts.append(
            {"type": "input_image", "image_url": data_url(data, mime_type), "detail": detail}
        )
    return parts


def content_text(content) -> str:
    """The text of an input item's content, whether a string or a list of parts."""
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text") or "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "input_text"
        )
    return str(content or "")
