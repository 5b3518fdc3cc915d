#!/usr/bin/python3
"""Throughput of a full VM-volume backup through the restic provider vs `restic backup --stdin` of the same bytes.

Usage (as root, from providers/restic, after ./generate-stubs):
    PYTHONPATH=gen ./bench.py [SIZE_MIB] [ROUNDS] [PROVIDER OPTIONS...]

A dense raw image of random data is exported read-only by qemu-nbd on a Unix socket. "ours" is the protocol path a host
drives: JobInit, BackupInit, BackupVm (the connected NBD socket passed on the sideband, NEW bitmap mode: block status,
256 KiB reads 16 deep, the stream into `restic backup --stdin`), BackupCleanup (manifest snapshot). "peer" is
`restic backup --stdin --stdin-filename disk.raw < image` into another fresh repository on the same file system.
Each round uses fresh repositories; rounds alternate which side runs first. Prints one JSON line per measure."""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import grpc
from backup.provider.v1 import backup_pb2, backup_pb2_grpc, types_pb2

HERE = os.path.dirname(os.path.abspath(__file__))
phases = {"backup_vm_s": []}


def restic_init(repo, pw):
    subprocess.run(["restic", "init", "-q", "--no-cache", "--repo", repo, "--password-file", pw], check=True)


EXTRA = [a for a in sys.argv[3:]]  # e.g. --no-content-sha256


def ours(work, image, size, pw):
    repo = os.path.join(work, "repo-ours")
    restic_init(repo, pw)
    sock = os.path.join(work, "p.sock")
    provider = subprocess.Popen([os.path.join(HERE, "grpc-backup-provider-restic"), "--listen", "unix:" + sock,
                                 "--repository", repo, "--password-file", pw,
                                 "--state-directory", os.path.join(work, "state"), *EXTRA], stderr=subprocess.DEVNULL)
    nbd_sock = os.path.join(work, "nbd.sock")
    nbd = subprocess.Popen(["qemu-nbd", "-r", "-f", "raw", "-k", nbd_sock, "-x", "disk", image])
    try:
        while not (os.path.exists(sock) and os.path.exists(nbd_sock)):
            time.sleep(0.05)
        channel = grpc.insecure_channel("unix:" + sock, options=[("grpc.default_authority", "localhost")])
        backup = backup_pb2_grpc.BackupStub(channel)
        side = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        side.connect(sock + ".fds")
        side.recv(64)  # HELLO
        started = time.monotonic()
        job, bid = str(uuid.uuid4()), str(uuid.uuid4())
        backup.JobInit(backup_pb2.JobInitRequest(job_id=job))
        backup.BackupInit(backup_pb2.BackupInitRequest(job_id=job, backup_id=bid, guest_id="900",
                                                       guest_type=types_pb2.GUEST_TYPE_VM))
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(nbd_sock)
        token = os.urandom(16)
        socket.send_fds(side, [b"GBFD" + bytes([1, 2]) + (1).to_bytes(2, "little") + token + bytes([3])], [conn.fileno()])
        start = backup_pb2.BackupVmStart(backup_id=bid, guest_config=b"bench\n")
        vol = start.volumes.add(device_name="drive-virtio0", size_bytes=size, bitmap_mode=types_pb2.BITMAP_MODE_NEW)
        vol.nbd.socket.transfer_token = token
        vol.nbd.socket.kind = types_pb2.FD_KIND_NBD_SOCKET
        vol.nbd.export_name = "disk"
        read = 0
        vm_started = time.monotonic()
        for event in backup.BackupVm(iter([backup_pb2.BackupVmRequest(start=start)])):
            if event.HasField("volume_completed"):
                read = event.volume_completed.bytes_read
        conn.close()
        phases["backup_vm_s"].append(round(time.monotonic() - vm_started, 2))
        backup.BackupCleanup(backup_pb2.BackupCleanupRequest(job_id=job, backup_id=bid, success=True))
        backup.JobCleanup(backup_pb2.JobCleanupRequest(job_id=job, success=True))
        elapsed = time.monotonic() - started
        assert read == size, read
        return elapsed
    finally:
        nbd.terminate()
        provider.terminate()
        nbd.wait()
        provider.wait()


def peer(work, image, pw):
    repo = os.path.join(work, "repo-peer")
    restic_init(repo, pw)
    started = time.monotonic()
    with open(image, "rb") as src:
        subprocess.run(["restic", "backup", "-q", "--cache-dir", os.path.join(work, "peer-cache"), "--repo", repo,
                        "--password-file", pw, "--stdin", "--stdin-filename", "disk.raw"], stdin=src, check=True)
    return time.monotonic() - started


def main():
    size = int(sys.argv[1] if len(sys.argv) > 1 else 1024) * 1024 * 1024
    rounds = int(sys.argv[2] if len(sys.argv) > 2 else 3)
    results = {"ours": [], "peer": []}
    with tempfile.TemporaryDirectory(prefix="restic-bench-") as base:
        image = os.path.join(base, "disk.raw")
        with open(image, "wb") as f:
            for _ in range(size // (1 << 20)):
                f.write(os.urandom(1 << 20))
        pw = os.path.join(base, "pw")
        with open(pw, "w") as f:
            f.write("bench\n")
        for r in range(rounds):
            order = ("ours", "peer") if r % 2 == 0 else ("peer", "ours")
            for side in order:
                work = tempfile.mkdtemp(dir=base)
                t = ours(work, image, size, pw) if side == "ours" else peer(work, image, pw)
                results[side].append(t)
                subprocess.run(["rm", "-rf", work])
    o, p = statistics.median(results["ours"]), statistics.median(results["peer"])
    print(json.dumps({"name": "restic-vm-full-1gib", "ours_s": round(o, 2), "peer": "restic backup --stdin",
                      "peer_s": round(p, 2), "ratio": round(p / o, 2), "ours_mib_s": round(size / o / 2**20, 1),
                      "peer_mib_s": round(size / p / 2**20, 1), "rounds": results, "phases": phases}))


if __name__ == "__main__":
    main()
