"""A volume's chunk digests (contract `VolumeDigest`, algorithm sha256-chunks-v1, as `Protocol/ChunkDigestList.cs`):
the SHA-256 of each fixed 4 MiB chunk from offset 0 (the last one may be short); the volume's digest is the SHA-256 of
the concatenated chunk digests. Stored in the archive's manifest in the language-neutral file form: one ASCII line
"sha256-chunks-v1 CHUNK_SIZE VOLUME_SIZE\\n", then 32 bytes per chunk."""

import hashlib

ALGORITHM = "sha256-chunks-v1"
CHUNK = 4 * 1024 * 1024
DIGEST = 32
PER_MESSAGE = 32768  # digests per VolumeChunkDigests message: 1 MiB


def chunk_count(size: int) -> int:
    return (size + CHUNK - 1) // CHUNK


class ChunkDigests:
    """Collects a full volume's chunk digests from pieces fed in ascending order, every byte from offset 0."""

    def __init__(self, size: int):
        self.size = size
        self.digests = bytearray(chunk_count(size) * DIGEST)
        self._fed = 0
        self._sha = None
        self._next = 0  # the offset the current chunk continues at

    def update(self, offset: int, data) -> None:
        view = memoryview(data)
        while view:
            if self._sha is None:
                if offset % CHUNK:
                    raise ValueError(f"a chunk must be fed from its start, not from offset {offset}")
                self._sha = hashlib.sha256()
                self._next = offset
            elif offset != self._next:
                raise ValueError(f"chunk data continues at {self._next}, not {offset}")
            end = min((offset // CHUNK + 1) * CHUNK, self.size)
            take = min(len(view), end - offset)
            if take <= 0:
                raise ValueError(f"data beyond the volume's {self.size} bytes")
            self._sha.update(view[:take])
            offset += take
            self._next = offset
            view = view[take:]
            if offset == end:
                index = (end - 1) // CHUNK
                self.digests[index * DIGEST:(index + 1) * DIGEST] = self._sha.digest()
                self._sha = None
                self._fed += 1

    def finish(self) -> str:
        """The volume's digest (lowercase hex); every chunk must have been fed whole."""
        if self._sha is not None:
            raise ValueError(f"the chunk at {self._next // CHUNK * CHUNK} was not fed to its end")
        if self._fed != chunk_count(self.size):
            raise ValueError(f"a full fed {self._fed} of {chunk_count(self.size)} chunks")
        return hashlib.sha256(self.digests).hexdigest()

    def file_form(self) -> bytes:
        return f"{ALGORITHM} {CHUNK} {self.size}\n".encode() + bytes(self.digests)
