"""Time-ordered ids (UUIDv7, RFC 9562) for jobs and batches.

A random (v4) key lands anywhere in the primary-key index, so at millions of jobs
each insert touches an index page that is rarely cached; the growth benchmark saw a
10k-prompt submit slow down 2-3x at 5M jobs (issue 16). A v7 id starts with its
creation time in milliseconds, so a batch's ids fill the index's right edge, and
keyset reads in id order follow time. The 74 random bits keep ids unguessable.
Python 3.11's `uuid` has no uuid7, hence this.
"""

from __future__ import annotations

import os
import time
import uuid

_RAND_A_BITS = 12
_RAND_B_BITS = 62
_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0b10 << 62


def uuid7() -> uuid.UUID:
    """A new UUIDv7: 48 bits of Unix time in ms, version, 74 random bits, variant."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = (rand >> _RAND_B_BITS) & ((1 << _RAND_A_BITS) - 1)
    rand_b = rand & ((1 << _RAND_B_BITS) - 1)
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | _VERSION_7 | rand_a << 64 | _VARIANT_RFC | rand_b
    return uuid.UUID(int=value)
