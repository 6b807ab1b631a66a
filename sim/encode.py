"""A hand-written protobuf ENCODER: varints, tags and length-delimited fields as raw bytes.

Why: tests need malformed and edge-case frames (truncated varints, unknown fields) and the
blast feed (perf/blast_feed.py) builds frames from fixed pieces; both write the raw encoding.
The emulator's own frames come from sim/proto's generated classes. Named for
what it does, so it is not mistaken for core/wire.pxd, the scanner's protobuf decoder.
"""

from __future__ import annotations


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative int."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    """A field key: field number and wire type in one varint."""
    return varint(number << 3 | wire_type)


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes, embedded message)."""
    return tag(number, 2) + varint(len(payload)) + payload
