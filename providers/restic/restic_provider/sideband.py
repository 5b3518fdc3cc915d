"""The fd sideband (protos/README.md "File descriptors"): SOCK_SEQPACKET, HELLO with a channel id, TRANSFER packets
of 1..64 fds received strictly, a table of transfers claimed by (token, index) with a TTL, and sending restore sources
back on the connection that announced a channel id."""

import logging
import os
import socket
import stat
import threading
import time

from . import errors
from .peers import PeerPolicy

MAGIC = b"GBFD"
VERSION = 1
HELLO = 1
TRANSFER = 2
HEADER = 24
MAX_FDS = 64
KIND_FILE, KIND_BLOCK, KIND_NBD_SOCKET, KIND_PIPE = 1, 2, 3, 4
KIND_NAMES = {KIND_FILE: "file", KIND_BLOCK: "block device", KIND_NBD_SOCKET: "NBD socket", KIND_PIPE: "pipe"}

log = logging.getLogger("sideband")


class _Transfer:
    def __init__(self, fds, kinds, expires):
        self.fds = list(fds)  # None once claimed
        self.kinds = kinds
        self.expires = expires
        self.state = "pending"  # pending | rejected | expired


class FdTable:
    """Received transfers. A claim owns the fd from then on; unclaimed fds are closed after the TTL."""

    def __init__(self, ttl: float = 30.0, claim_wait: float = 5.0):
        self._ttl = ttl
        self._claim_wait = claim_wait
        self._transfers: dict[bytes, _Transfer] = {}
        self._cond = threading.Condition()

    def seen(self, token: bytes) -> bool:
        with self._cond:
            return token in self._transfers

    def add(self, token: bytes, fds, kinds):
        with self._cond:
            self._transfers[token] = _Transfer(fds, kinds, time.monotonic() + self._ttl)
            self._cond.notify_all()

    def reject(self, token: bytes, fds):
        for fd in fds:
            os.close(fd)
        with self._cond:
            entry = self._transfers.get(token)
            if entry is None:
                entry = _Transfer([], b"", 0)
                self._transfers[token] = entry
            elif entry.state == "pending":
                # A reused token: the first transfer's unclaimed fds go too.
                for fd in entry.fds:
                    if fd is not None:
                        os.close(fd)
                entry.fds = [None] * len(entry.fds)
            entry.state = "rejected"
            self._cond.notify_all()

    def expire(self):
        now = time.monotonic()
        with self._cond:
            for entry in self._transfers.values():
                if entry.state == "pending" and entry.expires < now:
                    for i, fd in enumerate(entry.fds):
                        if fd is not None:
                            os.close(fd)
                            entry.fds[i] = None
                    entry.state = "expired"

    def claim(self, ref, expected_kind: int) -> int:
        """Claims the fd named by an FdRef message; checks its declared and actual kind. The caller owns the result."""
        token = bytes(ref.transfer_token)
        if len(token) != 16 or token == bytes(16):
            raise errors.invalid("fd reference: transfer_token must be 16 bytes, not all zero", "FD_TRANSFER_UNKNOWN")
        if ref.kind != expected_kind:
            raise errors.invalid(f"fd reference: declared kind {ref.kind}, expected {KIND_NAMES[expected_kind]}",
                                 "FD_KIND_MISMATCH")
        deadline = time.monotonic() + self._claim_wait
        with self._cond:
            while token not in self._transfers:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise errors.invalid("fd transfer never arrived on the sideband", "FD_TRANSFER_UNKNOWN")
                self._cond.wait(left)
            entry = self._transfers[token]
            if entry.state == "rejected":
                raise errors.invalid("fd transfer was rejected by the sideband", "FD_TRANSFER_REJECTED")
            if entry.state == "expired":
                raise errors.invalid("fd transfer expired unclaimed", "FD_TRANSFER_EXPIRED")
            if ref.index >= len(entry.fds) or entry.fds[ref.index] is None:
                raise errors.invalid(f"fd {ref.index} of the transfer was already claimed or does not exist",
                                     "FD_ALREADY_CLAIMED")
            if entry.kinds[ref.index] != expected_kind:
                raise errors.invalid("fd reference kind differs from the kind sent in the transfer", "FD_KIND_MISMATCH")
            fd = entry.fds[ref.index]
            entry.fds[ref.index] = None
        try:
            check_kind(fd, expected_kind)
        except errors.ProviderError:
            os.close(fd)
            raise
        return fd

    def close_all(self):
        with self._cond:
            for entry in self._transfers.values():
                for i, fd in enumerate(entry.fds):
                    if fd is not None:
                        os.close(fd)
                        entry.fds[i] = None


def check_kind(fd: int, kind: int):
    mode = os.fstat(fd).st_mode
    if kind == KIND_FILE:
        ok = stat.S_ISREG(mode)
    elif kind == KIND_BLOCK:
        ok = stat.S_ISBLK(mode)
    elif kind == KIND_PIPE:
        ok = stat.S_ISFIFO(mode)
    else:
        ok = stat.S_ISSOCK(mode)
        if ok:
            with socket.socket(fileno=os.dup(fd)) as probe:
                ok = probe.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
    if not ok:
        raise errors.invalid(f"passed fd is not a {KIND_NAMES[kind]}", "FD_KIND_MISMATCH")


class Sideband:
    """Accepts host connections on the seqpacket listener, one thread per connection."""

    def __init__(self, listener: socket.socket, peers: PeerPolicy, table: FdTable):
        self._listener = listener
        self._peers = peers
        self.table = table
        self._channels: dict[bytes, socket.socket] = {}
        self._lock = threading.Lock()
        self._stopping = False

    def start(self):
        threading.Thread(target=self._accept_loop, name="sideband-accept", daemon=True).start()
        threading.Thread(target=self._expiry_loop, name="sideband-ttl", daemon=True).start()

    def stop(self):
        self._stopping = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.table.close_all()

    def _expiry_loop(self):
        while not self._stopping:
            time.sleep(1)
            self.table.expire()

    def _accept_loop(self):
        while not self._stopping:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                if self._stopping:
                    return
                continue
            if not self._peers.allows(conn, "sideband"):
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name="sideband-conn", daemon=True).start()

    def _serve(self, conn: socket.socket):
        channel = os.urandom(16)
        with self._lock:
            self._channels[channel] = conn
        try:
            conn.send(MAGIC + bytes([VERSION, HELLO]) + (0).to_bytes(2, "little") + channel)
            while not self._stopping:
                if not self._receive_one(conn):
                    return
        except OSError as e:
            log.info("sideband connection ended: %s", e)
        finally:
            with self._lock:
                self._channels.pop(channel, None)
            conn.close()

    def _receive_one(self, conn: socket.socket) -> bool:
        """Receives one packet; False when the connection is over (EOF or a protocol error)."""
        data, ancdata, flags, _ = conn.recvmsg(HEADER + MAX_FDS + 1, socket.CMSG_SPACE(MAX_FDS * 4),
                                               socket.MSG_CMSG_CLOEXEC)
        fds = []
        foreign_cmsg = False
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(payload) - len(payload) % 4
                fds.extend(int.from_bytes(payload[i:i + 4], "little", signed=True) for i in range(0, usable, 4))
            else:
                foreign_cmsg = True
        if not data and not fds:
            return False
        if len(data) < HEADER or data[:4] != MAGIC or data[4] != VERSION or data[5] != TRANSFER:
            for fd in fds:
                os.close(fd)
            log.warning("sideband protocol error (bad magic, version or type): closing the connection")
            return False
        count = int.from_bytes(data[6:8], "little")
        token = bytes(data[8:24])
        kinds = bytes(data[24:])
        bad = (flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or foreign_cmsg or not 1 <= count <= MAX_FDS
               or len(data) != HEADER + count or len(fds) != count or token == bytes(16)
               or any(k not in KIND_NAMES for k in kinds))
        if bad or self.table.seen(token):
            log.warning("sideband transfer rejected (%d fds, count %d, flags %#x)", len(fds), count, flags)
            self.table.reject(token, fds)
            return True
        self.table.add(token, fds, kinds)
        return True

    def send(self, channel_id: bytes, fds: list[int], kinds: list[int]) -> bytes:
        """Sends fds to the host on the connection that announced channel_id; returns the transfer token."""
        with self._lock:
            conn = self._channels.get(bytes(channel_id))
        if conn is None:
            raise errors.invalid("fd_channel_id names no open sideband connection of this provider")
        token = os.urandom(16)
        header = MAGIC + bytes([VERSION, TRANSFER]) + len(fds).to_bytes(2, "little") + token + bytes(kinds)
        socket.send_fds(conn, [header], fds)
        return token
