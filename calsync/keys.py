"""Stable 64-bit keys for texts: what the usage ledger stores in place of repeated texts.

A text's key is the same in every process and every run (Python's `hash()` is not), so a
scanner process can key its lines without asking the ledger, and a migration can key what
an older calsync stored. Keys are the first 8 bytes of BLAKE2b, read as a signed integer
(sqlite's INTEGER). Two texts with one key are not guarded against where only a key is
kept (names: sessions, directories, branches, models): for n texts the chance is about
n²/2⁶⁵, one in 10¹¹ for a million of them.
"""

from __future__ import annotations

from hashlib import blake2b
from struct import Struct
from zlib import crc32

_BLAKE2B_8 = blake2b(digest_size=8)     # copied for each text: no arguments to parse
_SIGNED_64 = Struct(">q").unpack


def text_key(text: str) -> int:
    """The text's stable signed 64-bit key (it is computed for every line kept)."""
    h = _BLAKE2B_8.copy()
    h.update(text.encode())
    key: int = _SIGNED_64(h.digest())[0]
    return key


def request_key(request_id: str) -> int:
    """A requestId's key: its CRC-32. It only has to tell apart the requests of one message
    (a handful at most), and it is computed for every line kept, so it is the cheap one."""
    return crc32(request_id.encode())
