"""The Backup service: jobs, one guest's backup at a time per backup_id, VMs over NBD, containers over TAR_STREAM."""

import base64
import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field

import grpc
from backup.provider.v1 import backup_pb2, backup_pb2_grpc, types_pb2
from google.protobuf import timestamp_pb2

from . import catalog as cat
from . import chunk_digests as cd
from . import errors
from . import sideband as sb
from .chains import ChainState
from .nbd_copy import HashingWriter, Pacer, VolumeReader
from .store import Store, data_tags, meta_tags

log = logging.getLogger("backup")
MAX_LOG = 16 * 1024 * 1024
TAR_BLOCK = 512


@dataclass
class BackupState:
    job_id: str
    backup_id: str
    guest_id: str
    guest_type: str
    when: float
    archive: str
    guest_name: str
    notes: str
    manifest: dict = field(default_factory=dict)
    data_ids: list = field(default_factory=list)
    status: str = "init"  # init | running | stored | complete | failed
    cancel: threading.Event = field(default_factory=threading.Event)
    running: threading.Lock = field(default_factory=threading.Lock)
    chain_devices: list = field(default_factory=list)
    stats: tuple = (0, 0)
    log: bytes = b""


def _event(**kwargs) -> backup_pb2.BackupVmEvent:
    return backup_pb2.BackupVmEvent(**kwargs)


def _log_record(level, message) -> types_pb2.LogRecord:
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    return types_pb2.LogRecord(level=level, message=message, time=now)


class BackupService(backup_pb2_grpc.BackupServicer):
    def __init__(self, store: Store, fds: sb.FdTable, chains: ChainState, chunk_digests: bool = True):
        self.chunk_digests = chunk_digests
        self.store = store
        self.fds = fds
        self.chains = chains
        self.jobs: set[str] = set()
        self.backups: dict[str, BackupState] = {}
        self.lock = threading.Lock()

    # Jobs -------------------------------------------------------------------------------------------------------

    def JobInit(self, request, context):
        try:
            _check_id(request.job_id, "job_id")
            self.store.restic.run("cat", "config", timeout=60)
        except errors.ProviderError as e:
            errors.abort(context, e)
        with self.lock:
            self.jobs.add(request.job_id)
        return backup_pb2.JobInitResponse()

    def JobCleanup(self, request, context):
        with self.lock:
            self.jobs.discard(request.job_id)
            leftovers = [b for b in self.backups.values() if b.job_id == request.job_id and b.status not in ("complete", "failed")]
        for b in leftovers:
            self._fail(b)
        return backup_pb2.JobCleanupResponse()

    # One guest -----------------------------------------------------------------------------------------------------

    def BackupInit(self, request, context):
        try:
            _check_id(request.job_id, "job_id")
            _check_id(request.backup_id, "backup_id")
            cat.check_guest_id(request.guest_id)
            kind = {types_pb2.GUEST_TYPE_VM: "vm", types_pb2.GUEST_TYPE_CONTAINER: "ct"}.get(request.guest_type)
            if kind is None:
                raise errors.invalid("guest_type must be VM or CONTAINER")
            if len(request.notes.encode()) > cat.MAX_NOTES:
                raise errors.invalid("notes are longer than 4096 bytes")
            with self.lock:
                existing = self.backups.get(request.backup_id)
                if existing is not None:
                    if existing.guest_id != request.guest_id or existing.guest_type != kind:
                        raise errors.ProviderError(grpc.StatusCode.ALREADY_EXISTS, "backup_id reused with other arguments")
                    return backup_pb2.BackupInitResponse(archive_name=existing.archive)
                if request.job_id not in self.jobs:
                    raise errors.not_found("job_id unknown: run JobInit again", "UNKNOWN_OPERATION")
            when = float(request.backup_time.seconds) if request.HasField("backup_time") else time.time()
            taken = set(self.store.catalog().archives)
            with self.lock:
                taken |= {b.archive for b in self.backups.values()}
                name = cat.archive_name(request.guest_id, when)
                while name in taken:
                    when += 1
                    name = cat.archive_name(request.guest_id, when)
                state = BackupState(request.job_id, request.backup_id, request.guest_id, kind, when, name,
                                    request.guest_name, request.notes)
                self.backups[request.backup_id] = state
            return backup_pb2.BackupInitResponse(archive_name=name)
        except errors.ProviderError as e:
            errors.abort(context, e)

    def BackupGetMechanism(self, request, context):
        try:
            b = self._get(request.backup_id)
            if request.guest_type == types_pb2.GUEST_TYPE_VM and b.guest_type == "vm":
                return backup_pb2.BackupGetMechanismResponse(vm=types_pb2.VM_BACKUP_MECHANISM_NBD)
            if request.guest_type == types_pb2.GUEST_TYPE_CONTAINER and b.guest_type == "ct":
                return backup_pb2.BackupGetMechanismResponse(container=types_pb2.CONTAINER_BACKUP_MECHANISM_TAR_STREAM)
            raise errors.precondition("guest type differs from BackupInit's or is not supported", "MECHANISM_NOT_SUPPORTED")
        except errors.ProviderError as e:
            errors.abort(context, e)

    def BackupVmQueryIncremental(self, request, context):
        try:
            b = self._get(request.backup_id)
            catalog = self.store.catalog()
            response = backup_pb2.BackupVmQueryIncrementalResponse()
            for vol in request.volumes:
                _check_device(vol.device_name)
                base = self.chains.base(b.guest_id, vol.device_name)
                archive = catalog.archives.get(base) if base else None
                use = archive is not None and archive.devices.get(vol.device_name) == vol.size_bytes
                response.choices.add(device_name=vol.device_name,
                                     choice=types_pb2.INCREMENTAL_CHOICE_USE if use else types_pb2.INCREMENTAL_CHOICE_NEW)
            return response
        except errors.ProviderError as e:
            errors.abort(context, e)

    def BackupVm(self, request_iterator, context):
        first = next(request_iterator, None)
        if first is None or not first.HasField("start"):
            errors.abort(context, errors.invalid("the first BackupVmRequest must be `start`"))
        start = first.start
        try:
            b = self._get(start.backup_id)
            if b.guest_type != "vm":
                raise errors.precondition("BackupVm for a container backup", "MECHANISM_NOT_SUPPORTED")
            if not b.running.acquire(blocking=False):
                raise errors.ProviderError(grpc.StatusCode.FAILED_PRECONDITION, "BackupVm already running", "OPERATION_IN_PROGRESS")
        except errors.ProviderError as e:
            errors.abort(context, e)
        readers = []
        try:
            context.add_callback(b.cancel.set)
            yield from self._backup_vm(b, start, readers)
        except errors.ProviderError as e:
            errors.abort(context, e)
        finally:
            for reader in readers:
                if reader is not None:
                    reader.close()
            b.running.release()

    def _backup_vm(self, b: BackupState, start, readers: list):
        if b.status != "init":
            raise errors.precondition(f"backup is {b.status}; start a new backup")
        volumes = list(start.volumes)
        if not volumes:
            raise errors.invalid("start.volumes is empty")
        seen = set()
        for vol in volumes:
            _check_device(vol.device_name)
            if vol.device_name in seen:
                raise errors.invalid(f"device {vol.device_name} appears twice")
            seen.add(vol.device_name)
            if vol.size_bytes == 0:
                raise errors.invalid(f"{vol.device_name}: size_bytes is 0")
            if not vol.HasField("nbd"):
                raise errors.precondition(f"{vol.device_name}: only the NBD mechanism is supported",
                                          "MECHANISM_NOT_SUPPORTED")
            if vol.bitmap_mode not in (types_pb2.BITMAP_MODE_NONE, types_pb2.BITMAP_MODE_NEW, types_pb2.BITMAP_MODE_REUSE):
                raise errors.invalid(f"{vol.device_name}: bitmap_mode is unspecified")
            reuse = vol.bitmap_mode == types_pb2.BITMAP_MODE_REUSE
            if reuse != bool(vol.nbd.bitmap_context) or (reuse and not vol.nbd.bitmap_context.startswith("qemu:dirty-bitmap:")):
                raise errors.invalid(f"{vol.device_name}: bitmap_context must be a qemu:dirty-bitmap context exactly with REUSE")
            if vol.nbd.extra_connections > 63:
                raise errors.invalid(f"{vol.device_name}: too many extra connections")
        # Claim every socket first: claims expire.
        sockets = []
        for vol in volumes:
            fd = self.fds.claim(vol.nbd.socket, sb.KIND_NBD_SOCKET)
            sockets.append(fd)
            for extra in range(vol.nbd.extra_connections):
                ref = types_pb2.FdRef(transfer_token=vol.nbd.socket.transfer_token, index=vol.nbd.socket.index + 1 + extra,
                                      kind=sb.KIND_NBD_SOCKET)
                os.close(self.fds.claim(ref, sb.KIND_NBD_SOCKET))  # one connection is enough for restic's one stdin
        # Only an increment needs the repository's view (its base must still be there).
        catalog = self.store.catalog() if any(v.bitmap_mode == types_pb2.BITMAP_MODE_REUSE for v in volumes) else None
        parents = {}
        for vol in volumes:
            if vol.bitmap_mode == types_pb2.BITMAP_MODE_REUSE:
                base = self.chains.base(b.guest_id, vol.device_name)
                archive = catalog.archives.get(base) if base else None
                if archive is None or archive.devices.get(vol.device_name) != vol.size_bytes:
                    for fd in sockets:
                        os.close(fd)
                    raise errors.precondition(f"{vol.device_name}: no stored base of this size for an increment",
                                              "SIZE_MISMATCH")
                parents[vol.device_name] = base
        b.status = "running"
        b.manifest = {
            "format": 1, "backup_id": b.backup_id, "archive": b.archive, "guest_id": b.guest_id, "guest_type": "vm",
            "backup_time": b.when, "guest_name": b.guest_name, "notes": b.notes,
            "consistency": start.consistency,
            "guest_config": base64.b64encode(start.guest_config).decode(),
            "firewall_config": base64.b64encode(start.firewall_config).decode() if start.has_firewall_config else None,
            "volumes": [],
        }
        limit_kib = start.bandwidth_limit.bytes_per_second // 1024 if start.bandwidth_limit.bytes_per_second else 0
        readers.extend([None] * len(volumes))
        try:
            for i, vol in enumerate(volumes):
                fd, sockets[i] = sockets[i], None  # the reader owns it from the call on, also when it fails
                readers[i] = VolumeReader(fd, vol.nbd.export_name,
                                          vol.nbd.bitmap_context or "base:allocation", vol.size_bytes, vol.device_name)
        finally:
            for fd in sockets:
                if fd is not None:
                    os.close(fd)
        for vol, reader in zip(volumes, readers):
            yield from self._backup_volume(b, vol, reader, parents.get(vol.device_name), start.bandwidth_limit.bytes_per_second,
                                           limit_kib)
        b.status = "stored"

    def _backup_volume(self, b: BackupState, vol, reader: VolumeReader, parent: str | None, rate: int, limit_kib: int):
        device = vol.device_name
        incremental = parent is not None
        extents = reader.map()
        digests = None
        if incremental:
            # No chunk digests: a dirty range rarely fills its 4 MiB chunks, and the rest of a chunk can come neither
            # from the snapshot (an incremental's copy-before-write protects only the bitmap's areas, so QEMU answers
            # EINVAL for a clean one) nor cheaply from restic (only whole files are dumped).
            ranges = [(o, n, False) for o, n, flags in extents if flags & 1]
        else:
            ranges = [(o, n, bool(flags & 2)) for o, n, flags in extents]
            if self.chunk_digests:
                digests = cd.ChunkDigests(vol.size_bytes)
        total = sum(n for _, n, _ in ranges)
        yield _event(log=_log_record(types_pb2.LogRecord.LEVEL_INFO,
                                     f"{device}: {'increment of ' + str(total) + ' dirty bytes over ' + parent if incremental else 'full, ' + str(vol.size_bytes) + ' bytes'}"))
        proc = self.store.backup_stdin(device + ".raw", data_tags(b.archive, device, 0, b.guest_id), b.when,
                                       subprocess.PIPE, upload_limit_kib=limit_kib)
        writer = HashingWriter(proc.stdin, digests)
        done = [0, 0.0]
        events = []

        def progress(n):
            done[0] += n
            now = time.monotonic()
            if now - done[1] >= 0.25 or done[0] == total:
                done[1] = now
                events.append(_event(progress=types_pb2.Progress(device_name=device, bytes_done=done[0], bytes_total=total)))

        try:
            # The copy runs in a helper thread so progress can stream while it works.
            outcome = {}

            def work():
                try:
                    outcome["read"] = reader.copy(ranges, writer, Pacer(rate), b.cancel, progress)
                except BaseException as e:  # handed to the generator below
                    outcome["error"] = e
                finally:
                    if b.cancel.is_set() or "error" in outcome:
                        # After a cancel grpcio stops iterating this generator, so its finally runs only when the
                        # generator is collected; restic must not hold the repository lock until then (found by
                        # grpc-backup-conformance: the next repository call failed with REPOSITORY_LOCKED). A failed
                        # copy counts too: a host that cancels usually tears the snapshot down first, so the read
                        # fails before the cancel is seen.
                        self.store.reap(proc)

            thread = threading.Thread(target=work, daemon=True)
            thread.start()
            while thread.is_alive():
                thread.join(0.25)
                while events:
                    yield events.pop(0)
            while events:
                yield events.pop(0)
            if "error" in outcome:
                raise outcome["error"]
            result = self.store.finish_fed(proc)
        except BrokenPipeError:
            raise self.store.stopped_reading(proc)
        finally:
            self.store.reap(proc)
        b.data_ids.append(result["snapshot_id"])
        why = reader.trim([(o, n) for o, n, _ in ranges])
        if why:
            yield _event(log=_log_record(types_pb2.LogRecord.LEVEL_WARNING, f"{device}: {why}"))
        entry = {"device": device, "size": vol.size_bytes, "kind": "incr" if incremental else "full", "gen": 0,
                 "parent": parent, "map": [[o, n] for o, n, _ in ranges] if incremental else None,
                 "bitmap_mode": types_pb2.BitmapMode.Name(vol.bitmap_mode), "bytes_read": outcome["read"],
                 "bytes_stored": result.get("data_added", 0),
                 "digest": digests.finish() if digests else "",
                 "chunks": base64.b64encode(digests.file_form()).decode() if digests else None}
        b.manifest["volumes"].append(entry)
        b.chain_devices.append(device)
        completed = backup_pb2.VolumeCompleted(device_name=device, bitmap_mode=vol.bitmap_mode, bytes_read=outcome["read"],
                                               bytes_stored=entry["bytes_stored"])
        if digests:
            # The chunk list first, in runs of at most 1 MiB, then the digest it combines to.
            for first in range(0, cd.chunk_count(vol.size_bytes), cd.PER_MESSAGE):
                yield _event(chunk_digests=backup_pb2.VolumeChunkDigests(
                    device_name=device, first_chunk=first,
                    digests=bytes(digests.digests[first * cd.DIGEST:(first + cd.PER_MESSAGE) * cd.DIGEST])))
            completed.digest.CopyFrom(backup_pb2.VolumeDigest(algorithm=cd.ALGORITHM, chunk_size=cd.CHUNK,
                                                              value=entry["digest"]))
        yield _event(volume_completed=completed)

    # Containers ---------------------------------------------------------------------------------------------------

    def BackupContainerPrepare(self, request, context):
        try:
            b = self._get(request.backup_id)
            if b.guest_type != "ct" or request.mechanism != types_pb2.CONTAINER_BACKUP_MECHANISM_TAR_STREAM:
                raise errors.precondition("only TAR_STREAM container backups are supported", "MECHANISM_NOT_SUPPORTED")
            return backup_pb2.BackupContainerPrepareResponse()
        except errors.ProviderError as e:
            errors.abort(context, e)

    def BackupContainer(self, request, context):
        try:
            b = self._get(request.backup_id)
            if b.guest_type != "ct" or not request.HasField("tar_stream"):
                raise errors.precondition("only TAR_STREAM container backups are supported", "MECHANISM_NOT_SUPPORTED")
            if not b.running.acquire(blocking=False):
                raise errors.ProviderError(grpc.StatusCode.FAILED_PRECONDITION, "BackupContainer already running", "OPERATION_IN_PROGRESS")
        except errors.ProviderError as e:
            errors.abort(context, e)
        try:
            context.add_callback(b.cancel.set)
            yield from self._backup_container(b, request)
        except errors.ProviderError as e:
            errors.abort(context, e)
        finally:
            b.running.release()

    def _backup_container(self, b: BackupState, request):
        if b.status != "init":
            raise errors.precondition(f"backup is {b.status}; start a new backup")
        fd = self.fds.claim(request.tar_stream, sb.KIND_PIPE)
        b.status = "running"
        b.manifest = {
            "format": 1, "backup_id": b.backup_id, "archive": b.archive, "guest_id": b.guest_id, "guest_type": "ct",
            "backup_time": b.when, "guest_name": b.guest_name, "notes": b.notes,
            "guest_config": base64.b64encode(request.guest_config).decode(),
            "firewall_config": base64.b64encode(request.firewall_config).decode() if request.has_firewall_config else None,
            "sources": list(request.sources), "volumes": [],
        }
        limit_kib = request.bandwidth_limit.bytes_per_second // 1024
        proc = self.store.backup_stdin("rootfs.tar", data_tags(b.archive, "rootfs", 0, b.guest_id), b.when,
                                       subprocess.PIPE, upload_limit_kib=limit_kib)
        total = 0
        tail = b""
        last = 0.0
        pace = Pacer(request.bandwidth_limit.bytes_per_second)
        try:
            with os.fdopen(fd, "rb", buffering=0) as pipe:
                while True:
                    if b.cancel.is_set():
                        raise errors.ProviderError(grpc.StatusCode.CANCELLED, "the host cancelled the backup")
                    data = pipe.read(1 << 20)
                    if not data:
                        break
                    pace(len(data))
                    proc.stdin.write(data)
                    total += len(data)
                    tail = (tail + data)[-2 * TAR_BLOCK:]
                    now = time.monotonic()
                    if now - last >= 0.25:
                        last = now
                        yield backup_pb2.BackupContainerEvent(progress=types_pb2.Progress(bytes_done=total))
            # A tar stream ends with two zero blocks on a block boundary; anything else was cut short.
            if total < 2 * TAR_BLOCK or total % TAR_BLOCK or tail != bytes(2 * TAR_BLOCK):
                raise errors.ProviderError(grpc.StatusCode.DATA_LOSS,
                                           f"the tar stream is truncated ({total} bytes, no end-of-archive blocks)")
            result = self.store.finish_fed(proc)
        except BrokenPipeError:
            raise self.store.stopped_reading(proc)
        finally:
            self.store.reap(proc)
        b.data_ids.append(result["snapshot_id"])
        b.manifest["container"] = {"gen": 0, "bytes": total, "bytes_stored": result.get("data_added", 0)}
        b.status = "stored"
        yield backup_pb2.BackupContainerEvent(progress=types_pb2.Progress(bytes_done=total, bytes_total=total))

    # End of a guest ------------------------------------------------------------------------------------------------

    def BackupHandleLogFile(self, request, context):
        try:
            b = self._get(request.backup_id)
            fd = self.fds.claim(request.log_file, sb.KIND_FILE)
            with os.fdopen(fd, "rb") as f:
                data = os.pread(f.fileno(), MAX_LOG + 1, 0)
            if len(data) > MAX_LOG:
                data = data[:MAX_LOG] + b"\n[log truncated at 16 MiB]\n"
            b.log = data
            return backup_pb2.BackupHandleLogFileResponse()
        except errors.ProviderError as e:
            errors.abort(context, e)

    def BackupCleanup(self, request, context):
        with self.lock:
            b = self.backups.get(request.backup_id)
        if b is None:
            if request.success:
                errors.abort(context, errors.not_found("backup_id unknown (provider restarted?)", "UNKNOWN_OPERATION"))
            return backup_pb2.BackupCleanupResponse()
        try:
            if not request.success:
                self._fail(b)
                return backup_pb2.BackupCleanupResponse()
            with b.running:
                if b.status == "stored":
                    self._complete(b)
                if b.status != "complete":
                    raise errors.ProviderError(grpc.StatusCode.INTERNAL, f"nothing was stored for this backup ({b.status})")
            stored, restored = b.stats
            return backup_pb2.BackupCleanupResponse(stats=backup_pb2.BackupStats(archive_size_bytes=stored,
                                                                                 restored_size_bytes=restored))
        except errors.ProviderError as e:
            errors.abort(context, e)

    def _complete(self, b: BackupState):
        m = b.manifest
        m["log"] = base64.b64encode(b.log).decode()
        restored = sum(v["size"] for v in m["volumes"]) + m.get("container", {}).get("bytes", 0)
        stored = sum(v["bytes_stored"] for v in m["volumes"]) + m.get("container", {}).get("bytes_stored", 0)
        m["restored_bytes"] = restored
        m["stored_bytes"] = stored
        with self.store.lock:
            result = self.store.write_meta(m, meta_tags(m, None, 0))
        stored += result.get("data_added", 0)
        b.stats = (stored, restored)
        b.status = "complete"
        if b.chain_devices:
            self.chains.advance(b.guest_id, b.chain_devices, b.archive)

    def _fail(self, b: BackupState):
        """Stops a running backup and forgets what it wrote; the chain state stays where it was."""
        b.cancel.set()
        with b.running:
            if b.status == "complete":
                return
            ids, b.data_ids = b.data_ids, []
            b.status = "failed"
        try:
            self.store.forget(ids, prune=False)
        except errors.ProviderError as e:
            log.warning("could not forget the data of failed backup %s: %s", b.backup_id, e.message)

    def _get(self, backup_id: str) -> BackupState:
        with self.lock:
            b = self.backups.get(backup_id)
        if b is None:
            raise errors.not_found(f"backup_id {backup_id!r} unknown (provider restarted?)", "UNKNOWN_OPERATION")
        return b


def _check_id(value: str, what: str):
    if not 1 <= len(value) <= 64 or not all(c.isalnum() or c in "-_." for c in value):
        raise errors.invalid(f"{what} must be 1 to 64 characters of [A-Za-z0-9._-]")


def _check_device(name: str):
    if not cat.DEVICE.match(name):
        raise errors.invalid(f"device name {name!r} must match [A-Za-z0-9._+=-]{{1,128}}")
