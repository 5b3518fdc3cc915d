"""Reading one volume from the host's point-in-time NBD export (python3-libnbd on the passed socket) into a writer.

The whole volume is mapped with block status before anything is trimmed (a trimmed range cannot be queried any
more). A full (NEW/NONE) reads `base:allocation`: data ranges are read, zero ranges are written as zeros without
reading, so the stream is the raw disk. An increment (REUSE) reads only the ranges the dirty-bitmap context marks,
and returns them as the increment's map."""

import os
import threading
import time
from collections import deque

import grpc
import nbd

from . import errors
from .chunk_digests import ChunkDigests

REQUEST = 256 * 1024  # qemu's NBD server is slowest with requests of 1 MiB or more
DEPTH = 16
TRIM_PIECE = 32 * 1024 * 1024
# QEMU 7.2 aborts (hbitmap_reset assertion) on a discard of the snapshot-access export that is not aligned to the
# copy-before-write cluster size (64 KiB unless the fleecing target's clusters are larger). Trimming less is always
# safe, so ranges are merged and then shrunk inward to this alignment (the disk's end is allowed as an end).
TRIM_ALIGN = 64 * 1024
ZEROS = bytes(1 << 20)
STATUS_SPAN = 1 << 30


def broken(what: str, e: Exception) -> errors.ProviderError:
    return errors.ProviderError(grpc.StatusCode.ABORTED, f"{what}: {e}", "SNAPSHOT_BROKEN")


class VolumeReader:
    def __init__(self, fd: int, export_name: str, context: str, size: int, device: str):
        self.device = device
        self.context = context
        self.h = nbd.NBD()
        # Owns fd from the call on: closes it itself until libnbd takes it, which it does in connect_socket even when
        # the handshake fails (closing it again here was a double close).
        try:
            self.h.set_export_name(export_name)
            self.h.add_meta_context(context)
        except nbd.Error as e:
            os.close(fd)
            raise errors.invalid(f"{device}: {e}")
        try:
            self.h.connect_socket(fd)
        except nbd.Error as e:
            raise errors.invalid(f"{device}: NBD handshake on the passed socket failed: {e}")
        if self.h.get_size() != size:
            raise errors.invalid(f"{device}: the export has {self.h.get_size()} bytes, the request says {size}")
        if not self.h.can_meta_context(context):
            raise errors.invalid(f"{device}: the export does not offer the meta context {context}")
        self.size = size

    def map(self) -> list[tuple[int, int, int]]:
        """(offset, length, flags) covering the whole volume, adjacent equal flags merged."""
        extents: list[list[int]] = []

        def callback(metacontext, offset, entries, err):
            if metacontext != self.context:
                return 0
            pos = offset
            for i in range(0, len(entries) - 1, 2):
                length, flags = entries[i], entries[i + 1]
                if extents and extents[-1][2] == flags and extents[-1][0] + extents[-1][1] == pos:
                    extents[-1][1] += length
                else:
                    extents.append([pos, length, flags])
                pos += length
            return 0

        offset = 0
        try:
            while offset < self.size:
                before = extents[-1][0] + extents[-1][1] if extents else 0
                self.h.block_status(min(STATUS_SPAN, self.size - offset), offset, callback)
                after = extents[-1][0] + extents[-1][1] if extents else 0
                if after <= before:
                    raise nbd.Error("block status made no progress", 0)
                offset = min(after, self.size)
        except nbd.Error as e:
            raise broken(f"{self.device}: block status", e)
        if extents:
            last = extents[-1]
            last[1] = min(last[1], self.size - last[0])
        return [tuple(e) for e in extents]

    def copy(self, ranges, write, pace, cancelled: threading.Event, progress) -> int:
        """Reads the (offset, length, zero) ranges in order and hands every byte to write(data, offset); returns bytes
        read."""
        pending: deque = deque()
        read = 0

        def drain_one():
            buf, cookie, at = pending.popleft()
            while not self.h.aio_command_completed(cookie):
                self.h.poll(-1)
            write(buf.to_bytearray(), at)

        try:
            for offset, length, zero in ranges:
                if zero:
                    while pending:
                        drain_one()
                    while length:
                        n = min(length, len(ZEROS))
                        write(ZEROS[:n] if n < len(ZEROS) else ZEROS, offset)
                        length -= n
                        offset += n
                        progress(n)
                    continue
                end = offset + length
                while offset < end:
                    if cancelled.is_set():
                        raise errors.ProviderError(grpc.StatusCode.CANCELLED, "the host cancelled the backup")
                    n = min(REQUEST, end - offset)
                    pace(n)
                    buf = nbd.Buffer(n)
                    pending.append((buf, self.h.aio_pread(buf, offset), offset))
                    read += n
                    offset += n
                    progress(n)
                    if len(pending) >= DEPTH:
                        drain_one()
            while pending:
                drain_one()
        except nbd.Error as e:
            raise broken(f"{self.device}: read", e)
        return read

    def trim(self, ranges) -> str | None:
        """TRIMs what was stored, in pieces of at most 32 MiB; returns why it stopped early, or None."""
        if self.h.is_read_only() or not self.h.can_trim():
            return "the export does not allow TRIM; the fleecing space is freed at teardown"
        merged: list[list[int]] = []
        for offset, length in ranges:
            if merged and merged[-1][1] == offset:
                merged[-1][1] = offset + length
            else:
                merged.append([offset, offset + length])
        try:
            for start, end in merged:
                offset = -(-start // TRIM_ALIGN) * TRIM_ALIGN
                if end != self.size:
                    end = end // TRIM_ALIGN * TRIM_ALIGN
                while offset < end:
                    n = min(TRIM_PIECE, end - offset)
                    self.h.trim(n, offset)
                    offset += n
        except nbd.Error as e:
            return f"TRIM refused ({e}); stopped trimming this volume"
        return None

    def close(self):
        """Disconnects and frees the handle now (python3-libnbd closes the socket when the handle is freed): a
        lingering client connection would keep QEMU's nbd-server-stop waiting at the host's teardown."""
        if self.h is None:
            return
        try:
            self.h.shutdown()
        except nbd.Error:
            pass
        h, self.h = self.h, None
        del h


class Pacer:
    """A token bucket on bytes read, for the job's bandwidth limit."""

    def __init__(self, bytes_per_second: int):
        self.rate = bytes_per_second
        self.start = time.monotonic()
        self.done = 0

    def __call__(self, n: int):
        if not self.rate:
            return
        self.done += n
        ahead = self.done / self.rate - (time.monotonic() - self.start)
        if ahead > 0:
            time.sleep(ahead)


class HashingWriter:
    """Writes into restic's stdin, counting bytes, and feeds every byte to a full's chunk digests."""

    def __init__(self, pipe, digests: ChunkDigests | None):
        self.pipe = pipe.raw if hasattr(pipe, "raw") else pipe  # no second buffer copy
        self.count = 0
        self.digests = digests

    def __call__(self, data, offset: int):
        if self.digests is not None:
            self.digests.update(offset, data)
        view = memoryview(data)
        while view:
            view = view[self.pipe.write(view):]
        self.count += len(data)
