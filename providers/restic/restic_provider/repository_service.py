"""The Repository service over restic snapshots (see catalog.py for how archives map to snapshots)."""

import os

import grpc
from backup.provider.v1 import repository_pb2, repository_pb2_grpc, types_pb2
from google.protobuf import timestamp_pb2

from . import catalog as cat
from . import errors, retention
from .store import Store

PAGE = 1000


def entry(archive: cat.Archive) -> repository_pb2.BackupEntry:
    when = timestamp_pb2.Timestamp(seconds=int(archive.time))
    return repository_pb2.BackupEntry(
        archive_name=archive.name, guest_id=archive.guest_id,
        guest_type=types_pb2.GUEST_TYPE_CONTAINER if archive.guest_type == "ct" else types_pb2.GUEST_TYPE_VM,
        backup_time=when, stored_size_bytes=archive.stored, restored_size_bytes=archive.restored,
        protected=archive.protected, notes=archive.notes, incremental=archive.incremental)


class RepositoryService(repository_pb2_grpc.RepositoryServicer):
    def __init__(self, store: Store):
        self.store = store

    def ListBackups(self, request, context):
        try:
            if request.guest_id:
                cat.check_guest_id(request.guest_id)
            start = int(request.page_token) if request.page_token.isdigit() else 0
            if request.page_token and not request.page_token.isdigit():
                raise errors.invalid("page_token is not one this provider gave")
            archives = sorted((a for a in self.store.catalog().archives.values()
                               if not request.guest_id or a.guest_id == request.guest_id),
                              key=lambda a: (a.time, a.name), reverse=True)
            size = min(request.max_entries or PAGE, PAGE)
            page = archives[start:start + size]
            following = str(start + size) if start + size < len(archives) else ""
            return repository_pb2.ListBackupsResponse(backups=[entry(a) for a in page], next_page_token=following)
        except errors.ProviderError as e:
            errors.abort(context, e)

    def StatBackup(self, request, context):
        try:
            return repository_pb2.StatBackupResponse(backup=entry(self.store.catalog().get(request.archive_name)))
        except errors.ProviderError as e:
            errors.abort(context, e)

    def DeleteBackup(self, request, context):
        try:
            try:
                cat.check_archive_name(request.archive_name)
            except errors.ProviderError as e:
                if e.code != grpc.StatusCode.NOT_FOUND:
                    raise
                # A valid name this provider never gives out cannot exist; deleting what does not exist is OK.
                return repository_pb2.DeleteBackupResponse()
            with self.store.lock:
                archive = self.store.catalog().archives.get(request.archive_name)
                if archive is None:
                    return repository_pb2.DeleteBackupResponse()
                if archive.protected:
                    raise errors.precondition(f"archive {archive.name} is protected", "BACKUP_PROTECTED")
                self.store.remove([archive.name])
            return repository_pb2.DeleteBackupResponse()
        except errors.ProviderError as e:
            errors.abort(context, e)

    def PruneBackups(self, request, context):
        try:
            if request.guest_id:
                cat.check_guest_id(request.guest_id)
            with self.store.lock:
                catalog = self.store.catalog()
                guests: dict[str, list] = {}
                for a in catalog.archives.values():
                    if not request.guest_id or a.guest_id == request.guest_id:
                        guests.setdefault(a.guest_id, []).append((a.name, a.time, a.protected))
                response = repository_pb2.PruneBackupsResponse()
                doomed = []
                for guest in sorted(guests):
                    marks = retention.decide(guests[guest], request.policy)
                    for name, _, _ in sorted(guests[guest], key=lambda b: b[1], reverse=True):
                        keep, reason = marks[name]
                        response.decisions.add(archive_name=name, keep=keep, reason=reason)
                        if not keep:
                            if catalog.archives[name].protected:  # never: decide() keeps them; checked twice on purpose
                                raise errors.ProviderError(grpc.StatusCode.INTERNAL, "prune chose a protected archive")
                            doomed.append(name)
                if doomed and not request.dry_run:
                    self.store.remove(doomed)
            return response
        except errors.ProviderError as e:
            errors.abort(context, e)

    def UpdateBackupAttributes(self, request, context):
        try:
            if request.HasField("notes") and len(request.notes.encode()) > cat.MAX_NOTES:
                raise errors.invalid("notes are longer than 4096 bytes")
            with self.store.lock:
                catalog = self.store.catalog()
                archive = catalog.get(request.archive_name)
                add, remove = [], []
                if request.HasField("notes") and request.notes != archive.notes:
                    if archive.notes:
                        remove.append(cat.notes_tag(archive.notes))
                    if request.notes:
                        add.append(cat.notes_tag(request.notes))
                if request.HasField("protected") and request.protected != archive.protected:
                    (add if request.protected else remove).append("gb-protected")
                # Protection is on the data snapshots too, so a manual `restic forget --keep-tag gb-protected`
                # keeps the whole archive. Data snapshots first: retagging gives a snapshot a new id, and the data
                # ids are only looked up by tag afterwards anyway.
                protect = [t for t in add if t == "gb-protected"], [t for t in remove if t == "gb-protected"]
                data_ids = catalog.data_by_archive.get(archive.name, [])
                if (protect[0] or protect[1]) and data_ids:
                    self.store.restic.run(*_tag_args(*protect), *data_ids)
                if add or remove:
                    self.store.restic.run(*_tag_args(add, remove), archive.meta_id)
                archive = self.store.catalog().get(request.archive_name)
            return repository_pb2.UpdateBackupAttributesResponse(backup=entry(archive))
        except errors.ProviderError as e:
            errors.abort(context, e)

    def GetCapacity(self, request, context):
        try:
            repo = self.store.restic.s.repository
            path = repo[6:] if repo.startswith("local:") else repo
            if not os.path.isabs(path):
                raise errors.ProviderError(grpc.StatusCode.UNIMPLEMENTED, "capacity is known for local repositories only")
            st = os.statvfs(path)
            total = st.f_blocks * st.f_frsize
            available = st.f_bavail * st.f_frsize
            return repository_pb2.GetCapacityResponse(total_bytes=total, available_bytes=available,
                                                      used_bytes=total - st.f_bfree * st.f_frsize)
        except OSError as e:
            errors.abort(context, errors.ProviderError(grpc.StatusCode.UNAVAILABLE, f"statvfs: {e}", "REPOSITORY_UNREACHABLE"))
        except errors.ProviderError as e:
            errors.abort(context, e)


def _tag_args(add, remove) -> list[str]:
    args = ["tag"]
    for tag in add:
        args += ["--add", tag]
    for tag in remove:
        args += ["--remove", tag]
    return args
