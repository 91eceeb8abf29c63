"""TFRecord files without TensorFlow: framing, masked CRC-32C, streamed.

A TFRecord file is a sequence of records, each::

    uint64 length            (little-endian)
    uint32 masked_crc(length bytes)
    byte   data[length]
    uint32 masked_crc(data)

where ``masked_crc(x) = ((c >> 15) | (c << 17)) + 0xa282ead8`` (mod 2**32) and ``c`` is
the CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of ``x``
(tensorflow/core/lib/io/record_writer.cc, core/lib/hash/crc32c.h).

Records are read in batches of a few MB and their CRCs checked with numpy, many records
at once (a table-driven CRC advanced two bytes per step over a block of records), so
checking costs seconds per hundred MB; memory holds one batch.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from nasfilter.errors import DataError

CRC32C_POLY = 0x82F63B78
MASK_DELTA = 0xA282EAD8


def _crc_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ CRC32C_POLY if c & 1 else c >> 1
        table[i] = c
    return table


CRC_TABLE = _crc_table()
_TABLE_LIST = CRC_TABLE.tolist()


def crc32c(data: bytes) -> int:
    """CRC-32C of one buffer (pure Python; for short buffers)."""
    c = 0xFFFFFFFF
    t = _TABLE_LIST
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def _crc_table16() -> np.ndarray:
    """Two bytes per step: ``crc' = T16[(crc ^ word) & 0xFFFF] ^ (crc >> 16)``."""
    x = np.arange(1 << 16, dtype=np.uint32)
    t0 = CRC_TABLE[x & 0xFF]
    return CRC_TABLE[(t0 ^ (x >> 8)) & 0xFF] ^ (t0 >> 8)


CRC_TABLE16 = _crc_table16()


#: Bytes of one block of buffers checked together (its byte grid), and the largest
#: buffer checked in a block (longer ones, rare here, take the pure-Python path).
_BLOCK_BYTES = 1 << 21
_LONG = 1 << 16


def crc32c_many(buffers: list[bytes]) -> np.ndarray:
    """CRC-32C of every buffer (uint32 array), computed together with numpy: buffers
    sorted longest first and cut into blocks of about 2 MB of similar lengths, so
    memory stays small whatever the mix of lengths."""
    count = len(buffers)
    out = np.empty(count, dtype=np.uint32)
    if count == 0:
        return out
    lens = np.fromiter((len(b) for b in buffers), dtype=np.int64, count=count)
    order = np.argsort(-lens, kind="stable")
    pos = 0
    while pos < count:
        longest = int(lens[order[pos]])
        if longest > _LONG:
            out[order[pos]] = crc32c(buffers[int(order[pos])])
            pos += 1
            continue
        rows = order[pos : pos + max(1, _BLOCK_BYTES // max(longest, 1))]
        out[rows] = _crc_block([buffers[i] for i in rows.tolist()], lens[rows])
        pos += len(rows)
    return out


def _crc_block(buffers: list[bytes], lens: np.ndarray) -> np.ndarray:
    """CRC-32C of buffers given longest first: the ones still running at byte position
    j are a prefix, advanced two bytes per step."""
    count = len(buffers)
    width = int(lens[0]) + 1  # room for a zero pad byte
    width += width % 2
    grid = np.zeros((width, count), dtype=np.uint8)  # byte position, buffer
    for r, b in enumerate(buffers):
        if b:
            grid[: len(b), r] = np.frombuffer(b, dtype=np.uint8)
    words = grid[0::2].astype(np.uint32)
    words |= grid[1::2].astype(np.uint32) << 8
    neg = -lens
    crc = np.full(count, 0xFFFFFFFF, dtype=np.uint32)
    idx = np.empty(count, dtype=np.uint32)
    t8, t16 = CRC_TABLE, CRC_TABLE16
    for k in range(width // 2):
        two = int(np.searchsorted(neg, -(2 * k + 2), side="right"))  # len >= 2k+2
        one = int(np.searchsorted(neg, -(2 * k + 1), side="right"))  # len >= 2k+1
        if one == 0:
            break
        if two:
            c = crc[:two]
            i = idx[:two]
            np.bitwise_xor(c, words[k, :two], out=i)
            np.bitwise_and(i, 0xFFFF, out=i)
            np.right_shift(c, 16, out=c)
            np.bitwise_xor(c, t16[i], out=c)
        if one > two:  # odd lengths: their last byte
            c = crc[two:one]
            last = (c ^ grid[2 * k, two:one]) & 0xFF
            crc[two:one] = t8[last] ^ (c >> 8)
    return crc ^ np.uint32(0xFFFFFFFF)


def mask_many(crc: np.ndarray) -> np.ndarray:
    c = crc.astype(np.uint64)
    return (((c >> 15) | (c << 17)) + MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record in TFRecord framing (for writing small files)."""
    head = struct.pack("<Q", len(data))
    return (
        head + struct.pack("<I", mask(crc32c(head))) + data + struct.pack("<I", mask(crc32c(data)))
    )


def iter_records(
    path: str | Path,
    check_crc: bool = True,
    batch_bytes: int = 8 << 20,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The records of a TFRecord file, in order, streamed; raises DataError on a
    truncated file or a CRC mismatch (naming the record and its byte offset).
    ``on_progress(n)`` is called with the bytes consumed by each batch."""
    p = Path(path)
    try:
        f = open(p, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise DataError(f"Cannot open {p}: {e.strerror}.") from None
    with f:
        buf = b""
        index = 0  # records yielded so far
        offset = 0  # file offset of buf[0]
        eof = False
        while not eof or buf:
            if not eof:
                chunk = f.read(batch_bytes)
                eof = len(chunk) < batch_bytes
                buf = buf + chunk if buf else chunk
            heads: list[bytes] = []
            head_crcs: list[int] = []
            datas: list[bytes] = []
            data_crcs: list[int] = []
            pos = 0
            n = len(buf)
            while n - pos >= 12:
                (length,) = struct.unpack_from("<Q", buf, pos)
                end = pos + 12 + length + 4
                if end > n:
                    # about to read on for this record: trust its length only if its
                    # CRC holds (a corrupt length must not make us read the whole file)
                    head_crc = struct.unpack_from("<I", buf, pos + 8)[0]
                    if check_crc and mask(crc32c(buf[pos : pos + 8])) != head_crc:
                        raise DataError(
                            f"{p}: the length CRC of record {index + len(datas):,} "
                            f"(byte offset {offset + pos:,}) does not match: the file is "
                            "corrupt.",
                            "Download the file again.",
                        )
                    break
                heads.append(buf[pos : pos + 8])
                head_crcs.append(struct.unpack_from("<I", buf, pos + 8)[0])
                datas.append(buf[pos + 12 : pos + 12 + length])
                data_crcs.append(struct.unpack_from("<I", buf, end - 4)[0])
                pos = end
            if check_crc and heads:
                _check(heads, head_crcs, datas, data_crcs, p, index, offset)
            yield from datas
            index += len(datas)
            offset += pos
            if on_progress is not None and pos:
                on_progress(pos)
            buf = buf[pos:]
            if eof and buf and not datas:
                raise DataError(
                    f"{p} is truncated or corrupt: {len(buf)} bytes after record {index:,} "
                    f"(byte offset {offset:,}) do not form a whole record.",
                    "Download the file again.",
                )


def _check(
    heads: list[bytes],
    head_crcs: list[int],
    datas: list[bytes],
    data_crcs: list[int],
    path: Path,
    first: int,
    offset: int,
) -> None:
    for what, bufs, crcs in (("length", heads, head_crcs), ("data", datas, data_crcs)):
        got = mask_many(crc32c_many(bufs))
        bad = np.flatnonzero(got != np.asarray(crcs, dtype=np.uint64))
        if len(bad):
            k = int(bad[0])
            at = offset + sum(12 + len(d) + 4 for d in datas[:k])
            raise DataError(
                f"{path}: the {what} CRC of record {first + k:,} (byte offset {at:,}) does "
                "not match: the file is corrupt.",
                "Download the file again.",
            )
