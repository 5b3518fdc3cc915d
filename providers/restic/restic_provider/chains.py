"""Per guest and device, the archive of the last successful backup: what the host's dirty bitmap counts from.

Kept in the provider's state directory (not in the repository): a backup that is later deleted would otherwise look
like a valid base. Losing the file only costs a full backup (BackupVmQueryIncremental answers NEW)."""

import json
import os
import threading


class ChainState:
    def __init__(self, path: str):
        self.path = path
        self.lock = threading.Lock()

    def _read(self) -> dict:
        try:
            with open(self.path, "rb") as f:
                doc = json.load(f)
            return doc if isinstance(doc, dict) else {}
        except (FileNotFoundError, ValueError):
            return {}

    def base(self, guest_id: str, device: str) -> str | None:
        with self.lock:
            value = self._read().get(guest_id, {}).get(device)
            return value if isinstance(value, str) else None

    def advance(self, guest_id: str, devices: list[str], archive: str):
        with self.lock:
            doc = self._read()
            entry = doc.setdefault(guest_id, {})
            for device in devices:
                entry[device] = archive
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(doc, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
