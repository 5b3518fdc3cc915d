"""The Restore service. A VM volume is composed from its chain (base full + increments, oldest first) into a private
sparse raw file, served read-only by a private nbdkit on a Unix socket in a 0700 directory, and handed to the host
as a connected socket (FD_KIND_NBD_SOCKET): the host reads plain disk contents and never a format from the
repository. A container archive comes back as a pipe fed by `restic dump`."""

import base64
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

import grpc
from backup.provider.v1 import restore_pb2, restore_pb2_grpc, types_pb2

from . import errors
from . import sideband as sb
from .store import Store

log = logging.getLogger("restore")


@dataclass
class RestoreState:
    archive: str
    guest_type: str
    pins: list
    directory: str
    manifest: dict
    exports: dict = field(default_factory=dict)  # device -> (nbdkit process, socket path)
    dump: subprocess.Popen | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class RestoreService(restore_pb2_grpc.RestoreServicer):
    def __init__(self, store: Store, sideband: sb.Sideband, nbdkit: str = "/usr/bin/nbdkit"):
        self.store = store
        self.sideband = sideband
        self.nbdkit = nbdkit
        self.restores: dict[str, RestoreState] = {}
        self.lock = threading.Lock()

    def _archive(self, name: str):
        catalog = self.store.catalog()
        archive = catalog.get(name)
        return catalog, archive, self.store.manifest(archive)

    def RestoreGetMechanism(self, request, context):
        try:
            _, archive, _ = self._archive(request.archive_name)
            if archive.guest_type == "ct":
                return restore_pb2.RestoreGetMechanismResponse(guest_type=types_pb2.GUEST_TYPE_CONTAINER,
                                                               container=types_pb2.CONTAINER_RESTORE_MECHANISM_TAR)
            return restore_pb2.RestoreGetMechanismResponse(guest_type=types_pb2.GUEST_TYPE_VM,
                                                           vm=types_pb2.VM_RESTORE_MECHANISM_QEMU_IMG)
        except errors.ProviderError as e:
            errors.abort(context, e)

    def ArchiveGetGuestConfig(self, request, context):
        try:
            _, _, manifest = self._archive(request.archive_name)
            return restore_pb2.ArchiveGetGuestConfigResponse(guest_config=base64.b64decode(manifest["guest_config"]))
        except errors.ProviderError as e:
            errors.abort(context, e)

    def ArchiveGetFirewallConfig(self, request, context):
        try:
            _, _, manifest = self._archive(request.archive_name)
            if manifest.get("firewall_config") is None:
                return restore_pb2.ArchiveGetFirewallConfigResponse(present=False)
            return restore_pb2.ArchiveGetFirewallConfigResponse(
                present=True, firewall_config=base64.b64decode(manifest["firewall_config"]))
        except errors.ProviderError as e:
            errors.abort(context, e)

    def _init(self, restore_id: str, archive_name: str, guest_type: str) -> RestoreState:
        _check_id(restore_id)
        with self.lock:
            existing = self.restores.get(restore_id)
        if existing is not None:
            if existing.archive != archive_name:
                raise errors.ProviderError(grpc.StatusCode.ALREADY_EXISTS, "restore_id reused for another archive")
            return existing
        catalog, archive, manifest = self._archive(archive_name)
        if archive.guest_type != guest_type:
            raise errors.precondition(f"archive {archive_name} holds a {'container' if archive.guest_type == 'ct' else 'VM'}")
        pins = {archive.name}
        for vol in manifest["volumes"]:
            pins |= {a.name for a, _ in self.store.chain(catalog, archive, vol["device"])}
        state = RestoreState(archive_name, guest_type, sorted(pins),
                             tempfile.mkdtemp(prefix="restore-", dir=self.store.work_dir), manifest)
        with self.store.lock:
            for name in state.pins:
                self.store.pinned[name] = self.store.pinned.get(name, 0) + 1
        with self.lock:
            self.restores[restore_id] = state
        return state

    def RestoreVmInit(self, request, context):
        try:
            state = self._init(request.restore_id, request.archive_name, "vm")
            return restore_pb2.RestoreVmInitResponse(volumes=[
                types_pb2.VolumeSize(device_name=v["device"], size_bytes=v["size"]) for v in state.manifest["volumes"]])
        except errors.ProviderError as e:
            errors.abort(context, e)

    def RestoreVmVolumeInit(self, request, context):
        try:
            state = self._state(request.restore_id, request.archive_name)
            device = request.device_name
            if device not in {v["device"] for v in state.manifest["volumes"]}:
                raise errors.invalid(f"archive {state.archive} has no device {device!r}")
            with state.lock:
                export = state.exports.get(device)
                if export is None or export[0].poll() is not None:
                    export = self._export(state, device, request.bandwidth_limit.bytes_per_second)
                    state.exports[device] = export
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            try:
                conn.connect(export[1])
                token = self.sideband.send(request.fd_channel_id, [conn.fileno()], [sb.KIND_NBD_SOCKET])
            finally:
                conn.close()  # the host holds its copy; nbdkit serves it until it disconnects
            return restore_pb2.RestoreVmVolumeInitResponse(
                fd=types_pb2.FdRef(transfer_token=token, index=0, kind=types_pb2.FD_KIND_NBD_SOCKET),
                nbd_export_name=device)
        except errors.ProviderError as e:
            errors.abort(context, e)

    def _export(self, state: RestoreState, device: str, rate: int):
        catalog = self.store.catalog()
        archive = catalog.get(state.archive)
        image = os.path.join(state.directory, device + ".raw")
        if not os.path.exists(image):
            self.store.compose(catalog, archive, device, image)
        sock = os.path.join(state.directory, device + ".sock")
        # nbdkit writes its pidfile once it listens; the socket file alone exists from bind(), before listen(), and a
        # connect in that window is refused (seen on a loaded machine).
        ready = os.path.join(state.directory, device + ".pid")
        for stale in (sock, ready):
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass
        argv = [self.nbdkit, "--foreground", "--readonly", "--exit-with-parent", "--unix", sock, "-P", ready, "--threads", "4"]
        if rate:
            argv += ["--filter=rate"]
        argv += ["file", f"file={image}"]
        if rate:
            argv += [f"rate={rate * 8}"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                close_fds=True)
        deadline = time.monotonic() + 10
        while not os.path.exists(ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise errors.ProviderError(grpc.StatusCode.INTERNAL, f"nbdkit did not start: {proc.stderr.read().decode()[-500:]}")
            time.sleep(0.02)
        return proc, sock

    def RestoreVmVolumeCleanup(self, request, context):
        with self.lock:
            state = self.restores.get(request.restore_id)
        if state is not None:
            with state.lock:
                export = state.exports.pop(request.device_name, None)
            if export is not None:
                _stop(export[0])
                for path in (export[1], os.path.join(state.directory, request.device_name + ".raw"),
                             os.path.join(state.directory, request.device_name + ".pid")):
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
        return restore_pb2.RestoreVmVolumeCleanupResponse()

    def RestoreVmCleanup(self, request, context):
        self._cleanup(request.restore_id)
        return restore_pb2.RestoreVmCleanupResponse()

    def RestoreContainerInit(self, request, context):
        try:
            state = self._init(request.restore_id, request.archive_name, "ct")
            catalog = self.store.catalog()
            snap = catalog.data_id(state.archive, "rootfs", state.manifest.get("container", {}).get("gen", 0))
            with state.lock:
                if state.dump is not None:
                    _stop(state.dump)
                read, write = os.pipe2(os.O_CLOEXEC)
                try:
                    state.dump = self.store.restic.popen("dump", snap, "/rootfs.tar", stdout=write)
                finally:
                    os.close(write)
                try:
                    token = self.sideband.send(request.fd_channel_id, [read], [sb.KIND_PIPE])
                finally:
                    os.close(read)
            return restore_pb2.RestoreContainerInitResponse(
                tar_fd=types_pb2.FdRef(transfer_token=token, index=0, kind=types_pb2.FD_KIND_PIPE))
        except errors.ProviderError as e:
            errors.abort(context, e)

    def RestoreContainerCleanup(self, request, context):
        self._cleanup(request.restore_id)
        return restore_pb2.RestoreContainerCleanupResponse()

    def _cleanup(self, restore_id: str):
        with self.lock:
            state = self.restores.pop(restore_id, None)
        if state is None:
            return
        with state.lock:
            for proc, _ in state.exports.values():
                _stop(proc)
            state.exports.clear()
            if state.dump is not None:
                _stop(state.dump)
        shutil.rmtree(state.directory, ignore_errors=True)
        with self.store.lock:
            for name in state.pins:
                left = self.store.pinned.get(name, 0) - 1
                if left > 0:
                    self.store.pinned[name] = left
                else:
                    self.store.pinned.pop(name, None)

    def _state(self, restore_id: str, archive: str) -> RestoreState:
        with self.lock:
            state = self.restores.get(restore_id)
        if state is None or state.archive != archive:
            raise errors.not_found("restore_id unknown: call RestoreVmInit first", "UNKNOWN_OPERATION")
        return state

    def stop_all(self):
        for restore_id in list(self.restores):
            self._cleanup(restore_id)


def _stop(proc: subprocess.Popen):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _check_id(value: str):
    if not 1 <= len(value) <= 64 or not all(c.isalnum() or c in "-_." for c in value):
        raise errors.invalid("restore_id must be 1 to 64 characters of [A-Za-z0-9._-]")
