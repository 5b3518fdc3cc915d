"""The restic command line: one place that builds argv (never a secret in it) and the environment, and maps restic's
failures to protocol errors.

The repository password reaches restic only as RESTIC_PASSWORD_FILE. OpenNebula's restic driver settings map as:
connections -> `-o <backend>.connections=N`, bandwidth limit -> `--limit-upload/--limit-download` (KiB/s),
nice/ionice -> the command runs under `nice -n` / `ionice -c2 -n`, compression -> `--compression` (repository v2)."""

import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field

import grpc

from . import errors

log = logging.getLogger("restic")


@dataclass
class ResticSettings:
    repository: str
    password_file: str
    cache_dir: str
    binary: str = "/usr/bin/restic"
    connections: int = 0
    limit_upload_kib: int = 0
    limit_download_kib: int = 0
    nice: int | None = None
    ionice: int | None = None
    compression: str = "auto"
    extra_env: dict = field(default_factory=dict)

    def backend(self) -> str:
        scheme = self.repository.split(":", 1)[0] if ":" in self.repository else "local"
        return scheme if scheme in ("sftp", "s3", "rest", "b2", "azure", "gs", "swift", "rclone") else "local"


LOCK_WAIT = 30.0


class Restic:
    def __init__(self, settings: ResticSettings):
        self.s = settings

    def argv(self, *args: str, upload_limit_kib: int = 0) -> list[str]:
        prefix = []
        if self.s.nice is not None:
            prefix += ["nice", "-n", str(self.s.nice)]
        if self.s.ionice is not None:
            prefix += ["ionice", "-c2", "-n", str(self.s.ionice)]
        cmd = prefix + [self.s.binary]
        cmd += ["--cache-dir", self.s.cache_dir, "--compression", self.s.compression]
        if self.s.connections:
            cmd += ["-o", f"{self.s.backend()}.connections={self.s.connections}"]
        upload = min(x for x in (self.s.limit_upload_kib, upload_limit_kib) if x) if (self.s.limit_upload_kib or upload_limit_kib) else 0
        if upload:
            cmd += ["--limit-upload", str(upload)]
        if self.s.limit_download_kib:
            cmd += ["--limit-download", str(self.s.limit_download_kib)]
        return cmd + list(args)

    def env(self) -> dict:
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": self.s.cache_dir,
            "RESTIC_REPOSITORY": self.s.repository,
            "RESTIC_PASSWORD_FILE": self.s.password_file,
            "RESTIC_PROGRESS_FPS": "0.2",
            "LC_ALL": "C",
        }
        env.update(self.s.extra_env)
        return env

    def popen(self, *args: str, stdin=None, stdout=subprocess.PIPE, upload_limit_kib: int = 0) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args, upload_limit_kib=upload_limit_kib), stdin=stdin, stdout=stdout,
                                stderr=subprocess.PIPE, env=self.env(), close_fds=True, start_new_session=True)

    def run(self, *args: str, input: bytes | None = None, timeout: float = 600) -> bytes:
        """Runs restic to completion. A lock left by a restic of ours that died (a stale lock: same host, its PID
        gone) is removed with `restic unlock` and the command retried; a live holder is waited for up to
        LOCK_WAIT seconds (restic 0.14 has no --retry-lock), then the call fails with REPOSITORY_LOCKED."""
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            proc = subprocess.run(self.argv(*args), input=input, capture_output=True, env=self.env(), timeout=timeout)
            if proc.returncode == 0:
                return proc.stdout
            error = failure(args[0], proc.returncode, proc.stderr)
            if error.reason != "REPOSITORY_LOCKED" or args[0] == "unlock" or time.monotonic() >= deadline:
                raise error
            self.unlock_stale()
            time.sleep(0.5)

    def unlock_stale(self):
        """Removes only stale locks (`restic unlock` without --remove-all never touches a live holder's lock)."""
        proc = subprocess.run(self.argv("unlock"), capture_output=True, env=self.env(), timeout=60)
        if proc.returncode != 0:
            log.warning("restic unlock failed (%d): %s", proc.returncode,
                        proc.stderr.decode(errors="replace").strip()[-500:])

    def stop(self, proc: subprocess.Popen, grace: float = 15):
        """Stops a running restic so that it releases its repository lock: SIGINT first (restic's cleanup handler
        removes the lock; SIGKILL would leave a stale lock that blocks every later exclusive command), SIGKILL after
        the grace period, and then a stale-lock sweep."""
        if proc.poll() is not None:
            return
        try:
            proc.send_signal(signal.SIGINT)
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.unlock_stale()

    def json(self, *args: str):
        return json.loads(self.run(*args, "--json") or b"null")

    def snapshots(self, *tags: str) -> list[dict]:
        args = ["snapshots"]
        for tag in tags:
            args += ["--tag", tag]
        return self.json(*args) or []


def failure(command: str, code: int, stderr: bytes) -> errors.ProviderError:
    """Maps a failed restic run to the protocol's reasons by its (stable, English) messages."""
    text = stderr.decode(errors="replace").strip()[-2000:]
    lower = text.lower()
    message = f"restic {command} failed ({code}): {text}"
    if "wrong password" in lower or "no key found" in lower:
        return errors.ProviderError(grpc.StatusCode.UNAUTHENTICATED, message, "AUTHENTICATION_FAILED")
    if "repository is already locked" in lower or "unable to create lock" in lower:
        return errors.ProviderError(grpc.StatusCode.ABORTED, message, "REPOSITORY_LOCKED")
    if "no space left" in lower or "quota" in lower:
        return errors.ProviderError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, "QUOTA_EXCEEDED")
    if ("unable to open config file" in lower or "does not exist" in lower or "connection refused" in lower
            or "is there a repository at the following location" in lower):
        return errors.ProviderError(grpc.StatusCode.UNAVAILABLE, message, "REPOSITORY_UNREACHABLE")
    return errors.ProviderError(grpc.StatusCode.INTERNAL, message)


def summary(stdout: bytes) -> dict:
    """The closing summary line of `restic backup --json`."""
    for line in reversed(stdout.splitlines()):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("message_type") == "summary":
            return doc
    raise errors.ProviderError(grpc.StatusCode.INTERNAL, "restic backup printed no summary")
