"""The two provider sockets: bound from --listen (mode 0660 set between bind and listen) or taken from systemd
(LISTEN_FDS, told apart by SO_TYPE).

grpcio cannot adopt a listening fd, nor tell a servicer who the peer is on a Unix socket (context.peer() is just
"unix:"), so the public gRPC socket is not grpcio's: this module accepts on it, checks SO_PEERCRED, and splices each
allowed connection to grpcio's own socket in a private 0700 directory. Only control messages cross the splice;
bulk data travels as fds on the sideband."""

import logging
import os
import socket
import threading

from .peers import PeerPolicy

log = logging.getLogger("endpoints")
SD_LISTEN_FDS_START = 3


def _bind(path: str, kind: int) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock.bind(path)
    os.chmod(path, 0o660)
    sock.listen(64)
    return sock


def open_listeners(listen: str | None) -> tuple[socket.socket, socket.socket]:
    """(gRPC stream listener, sideband seqpacket listener)."""
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and int(os.environ.get("LISTEN_FDS", "0")) > 0:
        count = int(os.environ["LISTEN_FDS"])
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)
        stream = seqpacket = None
        for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count):
            os.set_inheritable(fd, False)
            sock = socket.socket(fileno=fd)
            if sock.type == socket.SOCK_STREAM and stream is None:
                stream = sock
            elif sock.type == socket.SOCK_SEQPACKET and seqpacket is None:
                seqpacket = sock
            else:
                raise SystemExit(f"systemd passed an unexpected socket (fd {fd}, type {sock.type})")
        if stream is None:
            raise SystemExit("systemd passed no stream socket for gRPC")
        if seqpacket is None:
            path = stream.getsockname()
            seqpacket = _bind(path + ".fds", socket.SOCK_SEQPACKET)
        return stream, seqpacket
    if not listen or not listen.startswith("unix:") or len(listen) <= 5:
        raise SystemExit("give --listen unix:PATH (or BACKUP_PROVIDER_LISTEN), or start under systemd socket activation")
    path = listen[5:]
    if not os.path.isabs(path):
        raise SystemExit("--listen: the socket path must be absolute")
    seqpacket = _bind(path + ".fds", socket.SOCK_SEQPACKET)
    stream = _bind(path, socket.SOCK_STREAM)
    return stream, seqpacket


class GrpcFront:
    """Accepts on the public gRPC socket, checks the peer, splices to grpcio's private socket."""

    def __init__(self, listener: socket.socket, backend_path: str, peers: PeerPolicy):
        self._listener = listener
        self._backend = backend_path
        self._peers = peers
        self._stopping = False

    def start(self):
        threading.Thread(target=self._accept_loop, name="grpc-front", daemon=True).start()

    def stop(self):
        self._stopping = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _accept_loop(self):
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                if self._stopping:
                    return
                continue
            if not self._peers.allows(client, "gRPC"):
                client.close()
                continue
            backend = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            try:
                backend.connect(self._backend)
            except OSError as e:
                log.error("gRPC backend unreachable: %s", e)
                client.close()
                backend.close()
                continue
            done = threading.Semaphore(0)
            for src, dst in ((client, backend), (backend, client)):
                threading.Thread(target=self._pump, args=(src, dst, done), daemon=True).start()
            threading.Thread(target=self._closer, args=(client, backend, done), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, done: threading.Semaphore):
        try:
            while True:
                data = src.recv(262144)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            done.release()

    @staticmethod
    def _closer(a: socket.socket, b: socket.socket, done: threading.Semaphore):
        done.acquire()
        done.acquire()
        a.close()
        b.close()
