"""Small file helpers: atomic writes (a kill never leaves a half-written result), checked image reads and a
streaming reader for json files too large to load at once."""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

import numpy as np


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """A file opened for writing that appears at ``path`` only when the block ends without an error:
    it is written to a temporary file in the same folder, synced, then ``os.replace``-d over ``path``.
    A crash or a kill never leaves a partial ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_open`)."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 1) -> Path:
    """Atomically write ``obj`` as JSON (numpy scalars and arrays are converted)."""

    def default(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, Path):
            return str(value)
        raise TypeError(f"cannot write {type(value).__name__} to JSON")

    return atomic_write_text(path, json.dumps(obj, indent=indent, default=default))


def atomic_save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file, then rename: a checkpoint is either whole or absent."""
    import io as _io

    import torch

    buffer = _io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as ``uint8 (H, W, 3)`` RGB.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for a
    truncated or unreadable one (PIL would otherwise fail lazily, or pad a truncated JPEG).
    """
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"{path}: truncated or not a readable image ({error})") from error


def save_image(path: str | os.PathLike, array: np.ndarray, *, quality: int = 92) -> Path:
    """Atomically save an ``(H, W)`` or ``(H, W, 3)`` uint8 array; the format follows the suffix."""
    import io as _io

    from PIL import Image

    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported image suffix (use .jpg, .jpeg or .png)")
    buffer = _io.BytesIO()
    kwargs = {"quality": quality} if fmt == "JPEG" else {}
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buffer, format=fmt, **kwargs)
    return atomic_write_bytes(path, buffer.getvalue())


# ----------------------------------------------------------------------------- streamed json
#: Characters :class:`JsonStream` reads at a time.
JSON_CHUNK_CHARS = 1 << 20
#: A single value (a member, an array element) longer than this many characters is refused.
JSON_MAX_VALUE_CHARS = 256 << 20
_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")
_JSON_DECODER = json.JSONDecoder()
_JSON_NUMBER_TAIL = re.compile(r"[0-9eE.+-]*")  # what may still follow a number cut by the chunk end


class JsonStream:
    """A json text read value by value from an open text ``handle``, in chunks, in constant memory.

    The full SALICON val fixation file is about 1.9 GB of json: :meth:`members` walks its top-level
    object and yields the elements of the large arrays one at a time, where ``json.loads`` would hold the
    whole text and every object at once. Each value is decoded by ``json.JSONDecoder.raw_decode``, so a
    value is exactly what ``json.loads`` would give. Every error is a ``ValueError`` that names ``path``:
    ``"<path>: broken json (<why>)"``; a single value over :data:`JSON_MAX_VALUE_CHARS` is refused rather
    than buffered. ``chunk_chars``: characters read at a time (default :data:`JSON_CHUNK_CHARS`)."""

    def __init__(self, handle: IO[str], path: str | os.PathLike, chunk_chars: int | None = None) -> None:
        self.handle, self.path, self.buf, self.pos, self.eof = handle, Path(path), "", 0, False
        self.chunk_chars = JSON_CHUNK_CHARS if chunk_chars is None else int(chunk_chars)

    def broken(self, why: str) -> ValueError:
        """The error for broken json here: ``ValueError("<path>: broken json (<why>)")``."""
        return ValueError(f"{self.path}: broken json ({why})")

    def _fill(self) -> bool:
        try:
            chunk = self.handle.read(self.chunk_chars)
        except UnicodeDecodeError as error:
            raise self.broken(str(error)) from error
        if not chunk:
            self.eof = True
            return False
        self.buf, self.pos = self.buf[self.pos:] + chunk, 0
        return True

    def peek(self) -> str:
        """The next character that is not whitespace, not consumed; the end of the text raises."""
        while True:
            self.pos = _JSON_WHITESPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                raise self.broken("the file ends early")

    def expect(self, chars: str) -> str:
        """Consume the next character, which must be one of ``chars``, and return it."""
        c = self.peek()
        if c not in chars:
            raise self.broken(f"expected one of {chars!r} at character {self.pos}, found {c!r}")
        self.pos += 1
        return c

    def value(self) -> Any:
        """Decode and consume the next json value (object, array, string, number, literal)."""
        self.peek()
        while True:
            try:
                obj, end = _JSON_DECODER.raw_decode(self.buf, self.pos)
                # a number cut by the chunk end decodes too: "12" of "123", and "2" of "2." or "1" of "1e5"
                cut = isinstance(obj, (int, float)) and _JSON_NUMBER_TAIL.fullmatch(self.buf, end) is not None
                if self.eof or not cut:
                    self.pos = end
                    return obj
            except json.JSONDecodeError as error:
                if self.eof:
                    raise self.broken(str(error)) from error
                if len(self.buf) - self.pos > JSON_MAX_VALUE_CHARS:
                    raise self.broken(f"{error}; or a single value over {JSON_MAX_VALUE_CHARS >> 20} MB") from error
            self._fill()

    def members(self, stream: Sequence[str] = ()) -> Iterator[tuple[str, str, Any]]:
        """The members of the top-level json object as ``(key, kind, value)``: ``kind`` is ``"value"`` (the
        whole member) or, for an array member named in ``stream``, ``"start"`` once (value ``None``) and then
        ``"item"`` per element. A text that is not an object raises ``ValueError`` naming the file."""
        if self.peek() != "{":
            raise ValueError(f"{self.path}: expected a json object at the top level")
        self.pos += 1
        if self.peek() == "}":
            return
        while True:
            key = self.value()
            if not isinstance(key, str):
                raise self.broken(f"expected a member name, found {key!r}")
            self.expect(":")
            if key in stream and self.peek() == "[":
                self.pos += 1
                yield key, "start", None
                if self.peek() == "]":
                    self.pos += 1
                else:
                    while True:
                        yield key, "item", self.value()
                        if self.expect(",]") == "]":
                            break
            else:
                yield key, "value", self.value()
            if self.expect(",}") == "}":
                return


def iter_json_members(path: str | os.PathLike, stream: Sequence[str] = (),
                      chunk_chars: int | None = None) -> Iterator[tuple[str, str, Any]]:
    """:meth:`JsonStream.members` of the UTF-8 json file ``path`` (opened here, closed when the iteration
    ends); a missing file raises ``FileNotFoundError``, broken json ``ValueError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"json file not found: {path}")
    with open(path, encoding="utf-8") as handle:
        yield from JsonStream(handle, path, chunk_chars).members(stream)
