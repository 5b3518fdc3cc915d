using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Backup.Transport;
using Grpc.Core;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// One BackupContainer call with the TAR_STREAM mechanism: the host's pax tar (container-view owners, exclusions
/// already applied) is copied from the passed pipe into <c>borg import-tar</c>, paced by the bandwidth limit. The
/// stream must end with tar's end-of-archive marker, otherwise it was cut short (DATA_LOSS) and borg's archive is
/// discarded. The configurations travel in the archive's comment.
/// </summary>
internal sealed class ContainerBackupRun(BorgRepository repository, RepositoryLock repositoryLock, Catalog catalog, ProviderFds fds)
{
    private const int MaxConfigBytes = 64 * 1024;
    private const int BufferSize = 1024 * 1024;

    public async Task RunAsync(BackupSession session, BackupContainerRequest request, IServerStreamWriter<BackupContainerEvent> responses,
        CancellationToken cancellationToken)
    {
        if (request.SourceCase != BackupContainerRequest.SourceOneofCase.TarStream)
        {
            throw ProviderErrors.Create(ErrorReason.MechanismNotSupported,
                "this provider receives containers as TAR_STREAM only");
        }
        if (request.GuestConfig.Length > MaxConfigBytes || request.FirewallConfig.Length > MaxConfigBytes)
        {
            throw ContractErrors.InvalidArgument($"guest and firewall configurations are limited to {MaxConfigBytes} bytes each");
        }
        using PassedFd passed = await fds.ClaimAsync(request.TarStream, cancellationToken);
        if (passed.Kind != Transport.FdKind.Pipe)
        {
            throw ProviderErrors.Create(ErrorReason.FdKindMismatch, "tar_stream must be a PIPE");
        }
        using var input = new FileStream(passed.TakeFileHandle(), FileAccess.Read, 0, isAsync: false);
        using IDisposable held = await repositoryLock.AcquireAsync(cancellationToken);
        var metadata = new ArchiveMetadata
        {
            BackupId = session.BackupId,
            GuestId = session.GuestId,
            GuestType = ArchiveMetadata.GuestTypeContainer,
            GuestName = session.GuestName,
            BackupTime = session.Archive.Time,
            GuestConfig = request.GuestConfig.ToByteArray(),
            FirewallConfig = request.HasFirewallConfig ? request.FirewallConfig.ToByteArray() : null,
        };
        var bandwidth = new BandwidthThrottle(request.BandwidthLimit?.BytesPerSecond ?? 0);
        long total = 0;
        JsonElement stats;
        await using (BorgProcess import = repository.StartImportTar(session.Archive.PartialBorgName, metadata))
        {
            try
            {
                byte[] buffer = new byte[BufferSize];
                byte[] tail = new byte[2 * TarHeader.BlockSize];
                int tailLength = 0;
                long lastProgress = 0;
                int read;
                while ((read = await input.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    await bandwidth.WaitAsync(read, cancellationToken);
                    await import.StandardInput.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                    total += read;
                    tailLength = KeepTail(tail, tailLength, buffer.AsSpan(0, read));
                    if (total - lastProgress >= 64L * 1024 * 1024)
                    {
                        lastProgress = total;
                        await responses.WriteAsync(new BackupContainerEvent { Progress = new Progress { DeviceName = "root", BytesDone = (ulong)total } },
                            cancellationToken);
                    }
                }
                if (tailLength < tail.Length || tail.AsSpan().ContainsAnyExcept((byte)0))
                {
                    // Never let borg commit a cut stream: stop it before closing its input.
                    await import.StopAsync();
                    throw ProviderErrors.Create(StatusCode.DataLoss,
                        $"the tar stream ended after {total} bytes without tar's end-of-archive marker: it was cut short");
                }
                import.StandardInput.Close();
                using JsonDocument result = JsonDocument.Parse(await import.ReadOutputAsync(cancellationToken));
                stats = result.RootElement.GetProperty("archive").GetProperty("stats").Clone();
            }
            catch (IOException e) when (!cancellationToken.IsCancellationRequested)
            {
                await import.WaitAsync(cancellationToken);
                throw new BorgException($"borg import-tar stopped reading its input: {e.Message}", 2, null);
            }
            catch (BorgException e)
            {
                throw BorgErrors.From(e, "storing the container backup");
            }
        }
        var entry = new CatalogEntry
        {
            Metadata = metadata,
            Notes = session.Notes,
            OriginalSize = stats.GetProperty("original_size").GetInt64(),
            CompressedSize = stats.GetProperty("compressed_size").GetInt64(),
            DeduplicatedSize = stats.GetProperty("deduplicated_size").GetInt64(),
        };
        await responses.WriteAsync(new BackupContainerEvent
        {
            Log = new LogRecord
            {
                Level = LogRecord.Types.Level.Info,
                Message = $"borg archive {session.Archive.PartialBorgName}: {total} bytes of tar, {entry.DeduplicatedSize} new in the repository",
                Time = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow),
            },
        }, cancellationToken);
        session.Stored = entry;
        catalog.Write(session.Archive, entry);
    }

    /// <summary>Keeps the last 1024 bytes seen, to check the end-of-archive marker.</summary>
    private static int KeepTail(byte[] tail, int tailLength, ReadOnlySpan<byte> data)
    {
        if (data.Length >= tail.Length)
        {
            data[^tail.Length..].CopyTo(tail);
            return tail.Length;
        }
        int keep = Math.Min(tailLength, tail.Length - data.Length);
        tail.AsSpan(tailLength - keep, keep).CopyTo(tail);
        data.CopyTo(tail.AsSpan(keep));
        return keep + data.Length;
    }
}
