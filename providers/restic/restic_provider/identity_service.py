"""Identity, and grpc.health.v1.Health written by hand (Debian has no python3-grpcio-health-checking): Check's
request is {1: string service}, its reply {1: enum status}, SERVING = 1."""

import os
import shutil

import grpc
from backup.provider.v1 import identity_pb2, identity_pb2_grpc, types_pb2

from . import VERSION, errors
from .restic import Restic

NAME = "org.grpcbackup.restic"


class IdentityService(identity_pb2_grpc.IdentityServicer):
    def __init__(self, restic: Restic, nbdkit: str):
        self.restic = restic
        self.nbdkit = nbdkit

    def GetProviderInfo(self, request, context):
        ops = [getattr(identity_pb2, "REPOSITORY_OPERATION_" + n) for n in
               ("LIST_BACKUPS", "STAT_BACKUP", "DELETE_BACKUP", "PRUNE_BACKUPS", "UPDATE_BACKUP_ATTRIBUTES", "GET_CAPACITY")]
        return identity_pb2.GetProviderInfoResponse(
            name=NAME, vendor_version=VERSION, protocol_majors=[1],
            capabilities=identity_pb2.Capabilities(
                vm_backup_mechanisms=[types_pb2.VM_BACKUP_MECHANISM_NBD],
                container_backup_mechanisms=[types_pb2.CONTAINER_BACKUP_MECHANISM_TAR_STREAM],
                vm_restore_mechanisms=[types_pb2.VM_RESTORE_MECHANISM_QEMU_IMG],
                container_restore_mechanisms=[types_pb2.CONTAINER_RESTORE_MECHANISM_TAR],
                incremental_vm_backup=True, repository_operations=ops,
                limits=identity_pb2.Limits(max_concurrent_backups=1, max_fds_per_transfer=64,
                                           preferred_read_size_bytes=256 * 1024)),
            manifest={"language": "python3", "backend": "restic"})

    def Probe(self, request, context):
        for tool in (self.restic.s.binary, self.nbdkit):
            if not (os.access(tool, os.X_OK) or shutil.which(tool)):
                return identity_pb2.ProbeResponse(state=identity_pb2.ProbeResponse.STATE_UNHEALTHY, message=f"{tool} missing")
        if not os.access(self.restic.s.password_file, os.R_OK):
            return identity_pb2.ProbeResponse(state=identity_pb2.ProbeResponse.STATE_UNHEALTHY,
                                              message="the repository password file is not readable")
        try:
            self.restic.run("cat", "config", timeout=20)
        except errors.ProviderError as e:
            return identity_pb2.ProbeResponse(state=identity_pb2.ProbeResponse.STATE_UNHEALTHY, message=e.message[:500])
        return identity_pb2.ProbeResponse(state=identity_pb2.ProbeResponse.STATE_READY)


def health_handler() -> grpc.GenericRpcHandler:
    def check(request: bytes, context):
        # Only the overall service "" is known.
        if request and request != b"\x0a\x00":
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return b"\x08\x01"

    return grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(check, request_deserializer=bytes, response_serializer=bytes),
    })
