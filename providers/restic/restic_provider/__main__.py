"""grpc-backup-provider-restic: serves the v1 provider protocol for a restic repository.

Options (each also as an environment variable): see providers/restic/README.md."""

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
from concurrent import futures

import grpc
from backup.provider.v1 import backup_pb2_grpc, identity_pb2_grpc, repository_pb2_grpc, restore_pb2_grpc

from . import endpoints
from .backup_service import BackupService
from .chains import ChainState
from .errors import guarded
from .identity_service import IdentityService, health_handler
from .peers import PeerPolicy
from .repository_service import RepositoryService
from .restic import Restic, ResticSettings
from .restore_service import RestoreService
from .sideband import FdTable, Sideband
from .store import Store


def parse(argv):
    env = os.environ.get
    p = argparse.ArgumentParser(prog="grpc-backup-provider-restic")
    p.add_argument("--listen", default=env("BACKUP_PROVIDER_LISTEN"), help="unix:PATH (else systemd sockets)")
    p.add_argument("--allow-uid", default=env("BACKUP_PROVIDER_ALLOWED_UIDS", ""), help="extra peer uids, comma separated")
    p.add_argument("--repository", default=env("RESTIC_REPOSITORY"), help="restic repository (path or backend URL)")
    p.add_argument("--password-file", default=env("RESTIC_PASSWORD_FILE"), help="file holding the repository password")
    p.add_argument("--state-directory", default=env("STATE_DIRECTORY"), help="chain state and restic cache")
    p.add_argument("--runtime-directory", default=env("RUNTIME_DIRECTORY"), help="restore images, private sockets")
    p.add_argument("--restic", default="/usr/bin/restic")
    p.add_argument("--nbdkit", default="/usr/bin/nbdkit")
    p.add_argument("--connections", type=int, default=int(env("RESTIC_CONNECTIONS", "0")))
    p.add_argument("--limit-upload", type=int, default=int(env("RESTIC_LIMIT_UPLOAD", "0")), help="KiB/s")
    p.add_argument("--limit-download", type=int, default=int(env("RESTIC_LIMIT_DOWNLOAD", "0")), help="KiB/s")
    p.add_argument("--nice", type=int, default=int(env("RESTIC_NICE")) if env("RESTIC_NICE") else None)
    p.add_argument("--ionice", type=int, default=int(env("RESTIC_IONICE")) if env("RESTIC_IONICE") else None)
    p.add_argument("--compression", default=env("RESTIC_COMPRESSION", "auto"), choices=("auto", "max", "off"))
    p.add_argument("--no-chunk-digests", "--no-content-sha256", dest="no_chunk_digests", action="store_true",
                   help="do not compute VolumeCompleted.digest and its chunk list (saves CPU; verification then has "
                        "nothing to compare)")
    args = p.parse_args(argv)
    if not args.repository or not args.password_file:
        p.error("--repository and --password-file are required")
    if not args.state_directory:
        p.error("--state-directory (or STATE_DIRECTORY) is required")
    if args.nice is not None and not -20 <= args.nice <= 19:
        p.error("--nice must be -20..19")
    if args.ionice is not None and not 0 <= args.ionice <= 7:
        p.error("--ionice must be 0..7")
    return args


def main(argv=None):
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse(argv if argv is not None else sys.argv[1:])
    os.umask(0o077)
    extra = {int(u) for u in args.allow_uid.split(",") if u.strip()}
    cache = os.path.join(args.state_directory, "cache")
    os.makedirs(cache, mode=0o700, exist_ok=True)
    runtime = tempfile.mkdtemp(prefix="grpc-backup-restic-", dir=args.runtime_directory or None)
    restic = Restic(ResticSettings(repository=args.repository, password_file=args.password_file, cache_dir=cache,
                                   binary=args.restic, connections=args.connections,
                                   limit_upload_kib=args.limit_upload, limit_download_kib=args.limit_download,
                                   nice=args.nice, ionice=args.ionice, compression=args.compression))
    store = Store(restic, runtime)
    peers = PeerPolicy(extra)
    stream, seqpacket = endpoints.open_listeners(args.listen)
    table = FdTable()
    sideband = Sideband(seqpacket, peers, table)
    chains = ChainState(os.path.join(args.state_directory, "chains.json"))
    restore = RestoreService(store, sideband, args.nbdkit)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=[("grpc.so_reuseport", 0)])
    identity_pb2_grpc.add_IdentityServicer_to_server(guarded(IdentityService(restic, args.nbdkit)), server)
    backup_pb2_grpc.add_BackupServicer_to_server(guarded(BackupService(store, table, chains, chunk_digests=not args.no_chunk_digests)), server)
    restore_pb2_grpc.add_RestoreServicer_to_server(guarded(restore), server)
    repository_pb2_grpc.add_RepositoryServicer_to_server(guarded(RepositoryService(store)), server)
    server.add_generic_rpc_handlers((health_handler(),))
    backend = os.path.join(runtime, "grpc.sock")
    if server.add_insecure_port("unix:" + backend) == 0:
        raise SystemExit("grpcio could not bind its private socket")
    server.start()
    front = endpoints.GrpcFront(stream, backend, peers)
    front.start()
    sideband.start()
    logging.getLogger("main").info("serving on %s (+ .fds)", stream.getsockname())

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    front.stop()
    sideband.stop()
    server.stop(5).wait()
    restore.stop_all()
    import shutil
    shutil.rmtree(runtime, ignore_errors=True)


def run():
    """Exit status: 0 clean stop, 1 failed at run time, 2 usage (argparse). A failure is one line on stderr; a
    traceback only with GRPC_BACKUP_DEBUG=1, as in the C# programs."""
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except ValueError as e:
        # A malformed number in the environment (RESTIC_CONNECTIONS=abc): a usage error, named.
        if os.environ.get("GRPC_BACKUP_DEBUG") == "1":
            raise
        print(f"grpc-backup-provider-restic: {e} (see grpc-backup-provider-restic --help)", file=sys.stderr)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 - the top of the program: one line, never a traceback
        if os.environ.get("GRPC_BACKUP_DEBUG") == "1":
            raise
        print(f"grpc-backup-provider-restic: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run()
