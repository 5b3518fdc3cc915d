"""Reading and writing archives in the restic repository: manifests, composing a device's chain into a raw file,
flattening, and removing archives without breaking any kept chain."""

import json
import logging
import os
import subprocess
import tempfile
import threading

import grpc

from . import catalog as cat
from . import errors
from .restic import Restic, failure, summary

log = logging.getLogger("store")
BLOCK = 1 << 20
ZERO_BLOCK = bytes(65536)


class Store:
    def __init__(self, restic: Restic, work_dir: str):
        self.restic = restic
        self.work_dir = work_dir
        self.lock = threading.RLock()  # every change to the repository's archives
        self._manifests: dict[str, dict] = {}
        self.pinned: dict[str, int] = {}  # archive -> restores using it
        self._listed: tuple[frozenset, list[dict]] | None = None  # (snapshot ids, `restic snapshots` output)
        self._listed_lock = threading.Lock()

    def catalog(self) -> cat.Catalog:
        """The repository's archives. Every restic run pays the repository key's derivation (about a second here), so
        on a local repository the last `restic snapshots` output is reused while the snapshot files are the same set:
        a snapshot's file name is the hash of its content, so an unchanged set of names is an unchanged set of
        snapshots, whoever changed the repository (another provider, a manual `restic forget`). Remote backends are
        listed by restic every time."""
        before = self._snapshot_files()
        with self._listed_lock:
            if before is not None and self._listed is not None and self._listed[0] == before:
                return cat.Catalog(self._listed[1])
        snapshots = self.restic.snapshots()
        if before is not None and frozenset(s.get("id", "") for s in snapshots) == before:
            with self._listed_lock:
                self._listed = (before, snapshots)
        return cat.Catalog(snapshots)

    def _snapshot_files(self) -> frozenset | None:
        """The snapshot ids of a local repository, from its `snapshots/` directory; None for a remote backend or when
        the directory cannot be read (restic then reports why)."""
        if self.restic.s.backend() != "local":
            return None
        path = self.restic.s.repository
        if path.startswith("local:"):
            path = path[len("local:"):]
        try:
            return frozenset(os.listdir(os.path.join(path, "snapshots")))
        except OSError:
            return None

    def manifest(self, archive: cat.Archive) -> dict:
        cached = self._manifests.get(archive.meta_id)
        if cached is None:
            raw = self.restic.run("dump", archive.meta_id, "/manifest.json")
            cached = cat.parse_manifest(raw, archive)
            self._manifests[archive.meta_id] = cached
        return cached

    def backup_stdin(self, filename: str, tags: list[str], when: float, stdin, upload_limit_kib: int = 0):
        """Starts `restic backup --stdin`; the caller feeds stdin (a pipe or an fd) and calls finish()."""
        args = ["backup", "--stdin", "--stdin-filename", filename, "--json", "--time", cat.restic_time(when),
                "--host", "grpc-backup"]
        for tag in tags:
            args += ["--tag", tag]
        return self.restic.popen(*args, stdin=stdin, upload_limit_kib=upload_limit_kib)

    @staticmethod
    def finish(proc: subprocess.Popen) -> dict:
        if proc.stdin is not None and proc.stdin.closed:
            proc.stdin = None  # the feeder closed it to signal EOF; communicate() must not flush it
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise failure("backup", proc.returncode, err)
        return summary(out)

    def finish_fed(self, proc: subprocess.Popen) -> dict:
        """Ends the stdin a feeder wrote and waits for restic's summary."""
        proc.stdin.close()
        return self.finish(proc)

    @staticmethod
    def stopped_reading(proc: subprocess.Popen) -> errors.ProviderError:
        """The error for a restic that exited while being fed (its stderr says why)."""
        proc.stdin = None
        _, err = proc.communicate()
        return errors.ProviderError(grpc.StatusCode.UNAVAILABLE,
                                    f"restic backup stopped reading: {err.decode(errors='replace')[-1000:]}",
                                    "REPOSITORY_UNREACHABLE")

    def reap(self, proc: subprocess.Popen):
        """Stops a restic still running after a failure or cancellation, releasing its repository lock. Its stdin is
        closed only after it stopped: an EOF first would let `restic backup --stdin` commit the partial data as a
        snapshot (found under load: a truncated tar stream left a snapshot that BackupCleanup never knew of)."""
        self.restic.stop(proc)
        if proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def write_meta(self, manifest: dict, archive_tags: list[str]) -> dict:
        body = json.dumps(manifest, sort_keys=True).encode()
        proc = self.backup_stdin("manifest.json", archive_tags, manifest["backup_time"], subprocess.PIPE)
        out, err = proc.communicate(body)
        if proc.returncode != 0:
            raise failure("backup", proc.returncode, err)
        return summary(out)

    def forget(self, ids: list[str], prune: bool):
        if ids:
            self.restic.run("forget", *(["--prune"] if prune else []), *sorted(set(ids)))

    # Composing -----------------------------------------------------------------------------------------------------

    def chain(self, catalog: cat.Catalog, archive: cat.Archive, device: str) -> list[tuple[cat.Archive, dict]]:
        """The archives that hold the device's data, base first, each with its volume entry."""
        chain = []
        current = archive
        while True:
            vol = _volume(self.manifest(current), device, current)
            chain.append((current, vol))
            if vol["kind"] == "full":
                break
            parent = catalog.archives.get(vol["parent"])
            if parent is None:
                raise errors.ProviderError(grpc.StatusCode.DATA_LOSS,
                                           f"archive {current.name}: its base {vol['parent']} is gone", "ARCHIVE_CORRUPT")
            if len(chain) > 10000:
                raise errors.ProviderError(grpc.StatusCode.DATA_LOSS, "increment chain loops", "ARCHIVE_CORRUPT")
            current = parent
        chain.reverse()
        size = chain[-1][1]["size"]
        if any(v["size"] != size for _, v in chain):
            raise errors.ProviderError(grpc.StatusCode.DATA_LOSS, f"{device}: sizes differ along the chain",
                                       "ARCHIVE_CORRUPT")
        return chain

    def compose(self, catalog: cat.Catalog, archive: cat.Archive, device: str, target: str) -> int:
        """Writes the device as of the archive into a new sparse raw file; returns its size."""
        chain = self.chain(catalog, archive, device)
        size = chain[-1][1]["size"]
        fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, size)
            for link, vol in chain:
                snap = catalog.data_id(link.name, device, vol["gen"])
                extents = [[0, size]] if vol["kind"] == "full" else vol["map"]
                self._apply(fd, snap, device, extents, full=vol["kind"] == "full", archive=link)
            os.fsync(fd)
        finally:
            os.close(fd)
        return size

    def _apply(self, fd: int, snap: str, device: str, extents, full: bool, archive: cat.Archive):
        proc = self.restic.popen("dump", snap, f"/{device}.raw")
        try:
            stream = proc.stdout
            for offset, length in extents:
                while length:
                    data = stream.read(min(BLOCK, length))
                    if not data:
                        raise errors.ProviderError(grpc.StatusCode.DATA_LOSS,
                                                   f"archive {archive.name}: {device} data ends early", "ARCHIVE_CORRUPT")
                    _write_sparse(fd, data, offset, full)
                    offset += len(data)
                    length -= len(data)
            if stream.read(1):
                raise errors.ProviderError(grpc.StatusCode.DATA_LOSS,
                                           f"archive {archive.name}: {device} data longer than its map", "ARCHIVE_CORRUPT")
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise failure("dump", proc.returncode, err)
        finally:
            self.restic.stop(proc)

    # Flatten and remove -------------------------------------------------------------------------------------------

    def flatten(self, catalog: cat.Catalog, archive: cat.Archive) -> list[str]:
        """Rewrites every incremental volume of the archive as a full one (OpenNebula's increment_flatten), under the
        next generation; returns the data snapshots it replaced, which the caller forgets with the old meta snapshot."""
        manifest = json.loads(json.dumps(self.manifest(archive)))
        gen = archive.gen + 1
        replaced = []
        with tempfile.TemporaryDirectory(dir=self.work_dir, prefix="flatten-") as tmp:
            for vol in manifest["volumes"]:
                device = vol["device"]
                path = os.path.join(tmp, device + ".raw")
                if vol["kind"] == "incr":
                    # Full volumes keep their data snapshot: each volume names its own generation.
                    self.compose(catalog, archive, device, path)
                    with open(path, "rb") as src:
                        proc = self.backup_stdin(device + ".raw", data_tags(archive.name, device, gen, archive.guest_id),
                                                 archive.time, src)
                        added = self.finish(proc)["data_added"]
                    os.unlink(path)
                    vol.update(kind="full", parent=None, map=None, flattened=True, bytes_stored=added)
                    replaced.append(catalog.data_id(archive.name, device, vol["gen"]))
                    vol["gen"] = gen
        self.write_meta(manifest, meta_tags(manifest, archive, gen))
        return replaced

    def remove(self, names: list[str]) -> None:
        """Removes archives; first flattens every other archive whose chain goes through one of them."""
        with self.lock:
            catalog = self.catalog()
            doomed = {n for n in names if n in catalog.archives}
            for name in doomed:
                if self.pinned.get(name):
                    raise errors.ProviderError(grpc.StatusCode.ABORTED, f"archive {name} is being restored",
                                               "REPOSITORY_LOCKED")
            if not doomed:
                return
            survivors = sorted((a for a in catalog.archives.values() if a.name not in doomed), key=lambda a: a.time)
            stale = []
            for archive in survivors:
                if archive.guest_type != "vm" or not archive.incremental:
                    continue
                manifest = self.manifest(archive)
                if any(link.name in doomed for vol in manifest["volumes"]
                       for link, _ in self.chain(catalog, archive, vol["device"])):
                    if self.pinned.get(archive.name):
                        raise errors.ProviderError(grpc.StatusCode.ABORTED, f"archive {archive.name} is being restored",
                                                   "REPOSITORY_LOCKED")
                    log.info("flattening %s: its chain goes through a removed archive", archive.name)
                    stale += self.flatten(catalog, archive)
                    stale += [archive.meta_id, *archive.old_meta_ids]
            for name in doomed:
                archive = catalog.archives[name]
                stale += [archive.meta_id, *archive.old_meta_ids, *catalog.data_by_archive.get(name, [])]
            self.forget(stale, prune=True)


def data_tags(name: str, device: str, gen: int, guest_id: str) -> list[str]:
    return ["gb-data", f"gb-archive={name}", f"gb-guest={guest_id}", f"gb-device={device}", f"gb-gen={gen}"]


def meta_tags(manifest: dict, archive: cat.Archive | None, gen: int) -> list[str]:
    tags = ["gb-meta", f"gb-archive={manifest['archive']}", f"gb-guest={manifest['guest_id']}",
            f"gb-type={manifest['guest_type']}", f"gb-gen={gen}", f"gb-restored={manifest['restored_bytes']}",
            f"gb-stored={manifest['stored_bytes']}"]
    for vol in manifest.get("volumes", []):
        tags.append(f"gb-dev={vol['device']}:{vol['size']}")
    if any(vol["kind"] == "incr" for vol in manifest.get("volumes", [])):
        tags.append("gb-incr")
    if archive is not None:
        if archive.protected:
            tags.append("gb-protected")
        if archive.notes:
            tags.append(cat.notes_tag(archive.notes))
    elif manifest.get("notes"):
        tags.append(cat.notes_tag(manifest["notes"]))
    return tags


def _volume(manifest: dict, device: str, archive: cat.Archive) -> dict:
    for vol in manifest["volumes"]:
        if vol["device"] == device:
            return vol
    raise errors.not_found(f"archive {archive.name} has no device {device!r}", "ARCHIVE_NOT_FOUND")


def _write_sparse(fd: int, data: bytes, offset: int, full: bool):
    """A full starts on a fresh sparse file: zero blocks stay holes. An increment must overwrite whatever is there."""
    if not full:
        os.pwrite(fd, data, offset)
        return
    view = memoryview(data)
    for start in range(0, len(view), len(ZERO_BLOCK)):
        piece = view[start:start + len(ZERO_BLOCK)]
        if piece != ZERO_BLOCK[:len(piece)]:
            os.pwrite(fd, piece, offset + start)
