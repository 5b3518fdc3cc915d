"""org.grpcbackup.restic: a backup provider for the v1 protocol, written in Python, storing into a restic repository."""

VERSION = "0.1.0"
