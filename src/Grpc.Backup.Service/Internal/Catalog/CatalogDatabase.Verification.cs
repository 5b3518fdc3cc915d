using Grpc.Backup.Protocol;

namespace Grpc.Backup.Service.Internal.Catalog;

/// <summary>
/// What verification compares a restore with (per-volume digests and chunk lists, or older content checksums, reported at backup time, a container's file
/// manifest in the state directory) and what each verification found. Kept apart from <c>backups</c>, which a refresh
/// from the provider replaces.
/// </summary>
internal sealed partial class CatalogDatabase
{
    public void RecordChecksums(string storage, string archive, IReadOnlyDictionary<string, string> sha256ByDevice)
    {
        lock (_lock)
        {
            using var transaction = _connection.BeginTransaction();
            foreach (var (device, sha256) in sha256ByDevice)
            {
                using var insert = Command("INSERT OR REPLACE INTO volume_checksums(storage, archive, device, sha256) VALUES($s, $a, $d, $h)",
                    [("$s", storage), ("$a", archive), ("$d", device), ("$h", sha256)]);
                insert.Transaction = transaction;
                insert.ExecuteNonQuery();
            }
            transaction.Commit();
        }
    }

    /// <summary>Device to checksum (empty when the provider computed none); empty when nothing was recorded.</summary>
    public IReadOnlyDictionary<string, string> Checksums(string storage, string archive) =>
        Query("SELECT device, sha256 FROM volume_checksums WHERE storage = $s AND archive = $a",
            r => (Device: r.GetString(0), Sha256: r.GetString(1)), ("$s", storage), ("$a", archive))
            .ToDictionary(r => r.Device, r => r.Sha256, StringComparer.Ordinal);

    public void RecordDigests(string storage, string archive, IReadOnlyDictionary<string, RecordedDigest> digestByDevice)
    {
        lock (_lock)
        {
            using var transaction = _connection.BeginTransaction();
            foreach (var (device, digest) in digestByDevice)
            {
                byte[]? chunks = null;
                if (digest.Chunks is { } list)
                {
                    using var buffer = new MemoryStream();
                    list.WriteTo(buffer);
                    chunks = buffer.ToArray();
                }
                using var insert = Command("INSERT OR REPLACE INTO volume_digests(storage, archive, device, algorithm, chunk_size, value, chunks) "
                    + "VALUES($s, $a, $d, $alg, $cs, $v, $c)",
                    [("$s", storage), ("$a", archive), ("$d", device), ("$alg", ChunkDigestList.Algorithm), ("$cs", ChunkDigestList.ChunkSize),
                        ("$v", digest.Value), ("$c", chunks)]);
                insert.Transaction = transaction;
                insert.ExecuteNonQuery();
            }
            transaction.Commit();
        }
    }

    /// <summary>Device to digest (with its chunk list when one was streamed); empty when nothing was recorded.</summary>
    public IReadOnlyDictionary<string, RecordedDigest> Digests(string storage, string archive) =>
        Query("SELECT device, value, chunks FROM volume_digests WHERE storage = $s AND archive = $a AND algorithm = $alg AND chunk_size = $cs",
            r => (Device: r.GetString(0), Digest: new RecordedDigest(r.GetString(1),
                r.IsDBNull(2) ? null : ChunkDigestList.ReadFrom(new MemoryStream((byte[])r.GetValue(2))))),
            ("$s", storage), ("$a", archive), ("$alg", ChunkDigestList.Algorithm), ("$cs", ChunkDigestList.ChunkSize))
            .ToDictionary(r => r.Device, r => r.Digest, StringComparer.Ordinal);

    public void RecordContainerManifest(string storage, string archive, string path) =>
        Execute("INSERT OR REPLACE INTO container_manifests(storage, archive, path) VALUES($s, $a, $p)",
            ("$s", storage), ("$a", archive), ("$p", path));

    public string? ContainerManifest(string storage, string archive) =>
        Query("SELECT path FROM container_manifests WHERE storage = $s AND archive = $a", r => r.GetString(0),
            ("$s", storage), ("$a", archive)).FirstOrDefault();

    public void SetVerification(VerificationRecord record) =>
        Execute("INSERT OR REPLACE INTO verifications(storage, archive, state, detail, time, task_id) VALUES($s, $a, $st, $d, $t, $task)",
            ("$s", record.Storage), ("$a", record.Archive), ("$st", record.State), ("$d", record.Detail), ("$t", Time(record.Time)),
            ("$task", record.TaskId));

    public IReadOnlyDictionary<string, VerificationRecord> Verifications(string? storage) =>
        Query("SELECT storage, archive, state, detail, time, task_id FROM verifications WHERE $s IS NULL OR storage = $s",
            r => new VerificationRecord(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), ParseTime(r.GetString(4)), r.GetString(5)),
            ("$s", storage))
            .ToDictionary(v => v.Storage + "/" + v.Archive, StringComparer.Ordinal);
}
