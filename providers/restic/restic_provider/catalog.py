"""Archives as restic snapshots.

One archive is a set of snapshots tied together by the tag `gb-archive=<name>`:
- one data snapshot per VM device (`gb-data`, `gb-device=<dev>`, `gb-gen=<n>`), file `/<device>.raw`: for a full,
  the whole raw disk; for an increment, only its dirty extents, back to back (the map is in the manifest);
- for a container, one data snapshot of `/rootfs.tar` (`gb-device=rootfs`);
- one meta snapshot (`gb-meta`, `gb-gen=<n>`), file `/manifest.json`, written by BackupCleanup(success): an archive
  exists only once it has a meta snapshot. Its tags carry what listing needs, so ListBackups is one `restic
  snapshots` call.
Flattening rewrites an archive under the next generation; readers take the highest generation, and the old one is
forgotten afterwards, so a crash in between leaves a readable archive.
"""

import base64
import calendar
import json
import re
import time
from dataclasses import dataclass, field

from . import errors

GUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
DEVICE = re.compile(r"^[A-Za-z0-9._+=-]{1,128}\Z")
ARCHIVE_CHARS = re.compile(r"^[A-Za-z0-9._+=:/-]{1,255}\Z")
OUR_ARCHIVE = re.compile(r"^([A-Za-z0-9._-]{1,64})/(\d{8}T\d{6}Z)\Z")
MAX_NOTES = 4096


def check_archive_name(name: str):
    """The README's archive-name rules, then this provider's own shape `<guest_id>/<yyyyMMddTHHmmssZ>`."""
    if not ARCHIVE_CHARS.match(name) or name.startswith("/") or any(s in ("", ".", "..") for s in name.split("/")):
        raise errors.invalid(f"archive name {name!r} breaks the archive-name rules", "INVALID_ARCHIVE_NAME")
    if not OUR_ARCHIVE.match(name):
        raise errors.not_found(f"archive {name!r} does not exist", "ARCHIVE_NOT_FOUND")


def check_guest_id(guest_id: str):
    if not GUEST_ID.match(guest_id) or guest_id in (".", ".."):
        raise errors.invalid(f"guest_id {guest_id!r} must match [A-Za-z0-9._-]{{1,64}} and not be . or ..")


def archive_name(guest_id: str, when: float) -> str:
    return f"{guest_id}/{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(when))}"


def archive_time(name: str) -> float:
    return float(calendar.timegm(time.strptime(name.split("/")[1], "%Y%m%dT%H%M%SZ")))


def restic_time(when: float) -> str:
    """restic's --time takes local time."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


def notes_tag(notes: str) -> str:
    return "gb-notes=" + base64.urlsafe_b64encode(notes.encode()).decode()


@dataclass
class Archive:
    name: str
    guest_id: str
    guest_type: str  # "vm" | "ct"
    gen: int
    meta_id: str
    restored: int = 0
    stored: int = 0
    protected: bool = False
    notes: str = ""
    incremental: bool = False
    devices: dict = field(default_factory=dict)  # device -> size
    old_meta_ids: list = field(default_factory=list)

    @property
    def time(self) -> float:
        return archive_time(self.name)


class Catalog:
    """A view of the repository from one `restic snapshots --json` call."""

    def __init__(self, snapshots: list[dict]):
        self.archives: dict[str, Archive] = {}
        self.data: dict[tuple, str] = {}  # (archive, device, gen) -> snapshot id
        self.data_by_archive: dict[str, list[str]] = {}
        self.all_ids: set[str] = set()
        metas = []
        for snap in snapshots:
            tags = snap.get("tags") or []
            values = _tag_values(tags)
            name = values.get("gb-archive")
            if not name or not OUR_ARCHIVE.match(name):
                continue
            self.all_ids.add(snap["id"])
            gen = int(values.get("gb-gen", "0")) if values.get("gb-gen", "0").isdigit() else 0
            if "gb-data" in tags and "gb-device" in values:
                self.data[(name, values["gb-device"], gen)] = snap["id"]
                self.data_by_archive.setdefault(name, []).append(snap["id"])
            elif "gb-meta" in tags:
                metas.append((gen, snap, tags, values, name))
        for gen, snap, tags, values, name in sorted(metas, key=lambda m: m[0]):
            previous = self.archives.get(name)
            devices = {}
            for tag in tags:
                if tag.startswith("gb-dev="):
                    dev, _, size = tag[7:].rpartition(":")
                    if DEVICE.match(dev) and size.isdigit():
                        devices[dev] = int(size)
            notes = ""
            if "gb-notes" in values:
                try:
                    notes = base64.urlsafe_b64decode(values["gb-notes"]).decode()
                except ValueError:
                    notes = ""
            archive = Archive(
                name=name, guest_id=name.split("/")[0], guest_type=values.get("gb-type", "vm"), gen=gen,
                meta_id=snap["id"], restored=_int(values.get("gb-restored")), stored=_int(values.get("gb-stored")),
                protected="gb-protected" in tags, notes=notes, incremental="gb-incr" in tags, devices=devices)
            if previous is not None:
                archive.old_meta_ids = previous.old_meta_ids + [previous.meta_id]
            self.archives[name] = archive

    def get(self, name: str) -> Archive:
        check_archive_name(name)
        archive = self.archives.get(name)
        if archive is None:
            raise errors.not_found(f"archive {name!r} does not exist", "ARCHIVE_NOT_FOUND")
        return archive

    def data_id(self, name: str, device: str, gen: int) -> str:
        snap = self.data.get((name, device, gen))
        if snap is None:
            raise errors.ProviderError(errors.grpc.StatusCode.DATA_LOSS,
                                       f"archive {name}: the data of {device} (generation {gen}) is missing",
                                       "ARCHIVE_CORRUPT")
        return snap


def _tag_values(tags) -> dict:
    values = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        values[key] = value if sep else ""
    return values


def _int(text) -> int:
    return int(text) if text and text.isdigit() else 0


def parse_manifest(raw: bytes, archive: Archive) -> dict:
    """Checks a manifest read back from the repository before anything uses it."""
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise _corrupt(archive, f"manifest is not JSON: {e}")
    if not isinstance(doc, dict) or doc.get("format") != 1 or doc.get("archive") != archive.name:
        raise _corrupt(archive, "manifest does not describe this archive")
    for vol in doc.get("volumes", []):
        if not DEVICE.match(str(vol.get("device", ""))) or not isinstance(vol.get("size"), int) or vol["size"] < 0:
            raise _corrupt(archive, "manifest volume has a bad device name or size")
        if vol.get("kind") not in ("full", "incr"):
            raise _corrupt(archive, "manifest volume has a bad kind")
        if vol["kind"] == "incr":
            parent = vol.get("parent")
            if not isinstance(parent, str) or not OUR_ARCHIVE.match(parent) or parent.split("/")[0] != archive.guest_id \
                    or archive_time(parent) >= archive.time:
                raise _corrupt(archive, "an increment's parent must be an older archive of the same guest")
            end = 0
            for extent in vol.get("map", []):
                if (not isinstance(extent, list) or len(extent) != 2 or not all(isinstance(x, int) for x in extent)
                        or extent[0] < end or extent[1] <= 0 or extent[0] + extent[1] > vol["size"]):
                    raise _corrupt(archive, "an increment's map is not ascending, non-overlapping and inside the disk")
                end = extent[0] + extent[1]
    return doc


def _corrupt(archive: Archive, why: str) -> errors.ProviderError:
    return errors.ProviderError(errors.grpc.StatusCode.DATA_LOSS, f"archive {archive.name}: {why}", "ARCHIVE_CORRUPT")
