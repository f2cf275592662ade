"""Framing of the MAOSIC line protocol our firmware speaks (firmware/docs/firmware_protocol.md).

One request or reply per line, printable ASCII, terminated by LF:

    request:  TT CMD [ARG ...]*CS\\n         e.g.  b"07 INF 250.0 100.0*60\\n"
    reply:    TT OK [VALUE ...]*CS\\n        e.g.  b"07 OK 150.000*29\\n"
    error:    TT ER <code> <text>*CS\\n      e.g.  b"07 ER 3 volume out of range*33\\n"

TT is a two-digit decimal tag (00-99) chosen by the host; the device echoes it. A device that
receives the same tag twice in a row does not execute the command again but resends its cached
reply, which makes a retry after a lost or garbled reply safe even for motion commands. CS is the
XOR of every byte before the '*', as two upper-case hex digits (the NMEA 0183 checksum).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TERMINATOR = b"\n"
CHECKSUM_SEP = b"*"
MAX_LINE_BYTES = 65536  # spectra replies are the longest lines (a few kB)

# Error codes a device answers with after "ER"; the same numbers are in the firmware sources.
ERR_UNKNOWN_COMMAND = 1
ERR_BAD_ARGUMENT = 2
ERR_OUT_OF_RANGE = 3
ERR_BUSY = 4
ERR_CHECKSUM = 5
ERR_HARDWARE_FAULT = 6
ERR_NOT_READY = 7


class FrameError(ValueError):
    """A line that is not a well-formed frame (bad checksum, bad tag, missing fields)."""


def checksum(body: bytes) -> bytes:
    """Two upper-case hex digits of the XOR of all bytes of `body`."""
    if len(body) > 256:
        # spectrum lines are kB long: XOR them in numpy instead of byte by byte
        value = int(np.bitwise_xor.reduce(np.frombuffer(body, dtype=np.uint8)))
    else:
        value = 0
        for byte in body:
            value ^= byte
    return b"%02X" % value


def encode_frame(tag: int, words: list[str]) -> bytes:
    """Bytes of one frame: tag (0-99) and words (command or status, then arguments)."""
    if not 0 <= tag <= 99:
        raise ValueError(f"frame tag {tag} outside 0-99")
    body = (f"{tag:02d} " + " ".join(words)).encode("ascii")
    return body + CHECKSUM_SEP + checksum(body) + TERMINATOR


@dataclass(frozen=True)
class Frame:
    """A decoded frame: the tag and the space-separated words after it."""

    tag: int
    words: list[str]


def decode_frame(line: bytes) -> Frame:
    """Parse one line (with or without its LF); raise FrameError naming what is wrong."""
    line = line.rstrip(b"\r\n")
    body, sep, cs = line.rpartition(CHECKSUM_SEP)
    if not sep:
        raise FrameError(f"no checksum separator in {line[:40]!r}")
    if cs.upper() != checksum(body):
        raise FrameError(f"checksum {cs!r} does not match {checksum(body)!r} in {line[:40]!r}")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise FrameError(f"non-ASCII bytes in {line[:40]!r}") from exc
    parts = text.split(" ")
    if len(parts) < 2 or len(parts[0]) != 2 or not parts[0].isdigit():
        raise FrameError(f"missing two-digit tag or command in {text[:40]!r}")
    return Frame(int(parts[0]), [p for p in parts[1:] if p])


def fmt(value: float, decimals: int = 1) -> str:
    """Fixed-point text of a number as the firmware parses it (no exponent, '.' decimal)."""
    return f"{value:.{decimals}f}"
