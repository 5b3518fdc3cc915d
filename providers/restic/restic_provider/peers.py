"""Peer credentials (SO_PEERCRED) on every accepted connection, both sockets (protos/README.md "Endpoints")."""

import logging
import os
import socket
import struct

log = logging.getLogger("peers")


class PeerPolicy:
    def __init__(self, extra_uids: set[int]):
        self.allowed = {0, os.getuid()} | extra_uids

    def allows(self, conn: socket.socket, what: str) -> bool:
        pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        if uid in self.allowed:
            return True
        log.warning("%s: refused a connection from uid %d (pid %d)", what, uid, pid)
        return False
