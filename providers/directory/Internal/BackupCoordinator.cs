using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Protocol;
using Grpc.Backup.Provider;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// The lifecycle of guest backups around the data copy: creating the archive (BackupInit), finishing it durably or
/// removing it (BackupCleanup), and winding up what a job left behind (JobCleanup).
/// </summary>
internal sealed partial class BackupCoordinator(ArchiveStore store, GuestLocks locks, BackupSessionTable sessions, FencingLedger fencing,
    TimeProvider timeProvider, ILogger<BackupCoordinator> logger)
{
    /// <summary>Notes longer than this are cut (UpdateBackupAttributes has the same limit).</summary>
    public const int MaxNotesBytes = 4096;

    public async Task<string> InitAsync(BackupInitRequest request, CancellationToken cancellationToken)
    {
        if (!ProtocolNames.IsValidOperationId(request.JobId) || !ProtocolNames.IsValidOperationId(request.BackupId))
        {
            throw ContractErrors.InvalidArgument("job_id and backup_id must be UUIDs in text form");
        }
        if (!ProtocolNames.IsValidGuestId(request.GuestId))
        {
            throw ContractErrors.InvalidArgument($"guest_id '{request.GuestId}' does not match [A-Za-z0-9._-]{{1,64}}");
        }
        if (request.GuestType is not (GuestType.Vm or GuestType.Container))
        {
            throw ContractErrors.InvalidArgument($"guest_type {request.GuestType} is not valid");
        }
        if (!sessions.HasJob(request.JobId))
        {
            throw ProviderErrors.Create(ErrorReason.UnknownOperation,
                $"job_id '{request.JobId}' is unknown: run JobInit again");
        }
        if (sessions.TryGet(request.BackupId, out BackupSession? known))
        {
            return Repeat(known, request);
        }

        await fencing.CheckAsync(request.JobId, cancellationToken);
        using IDisposable guestLock = await locks.AcquireAsync(request.GuestId, cancellationToken);
        if (sessions.TryGet(request.BackupId, out known))
        {
            return Repeat(known, request);
        }
        try
        {
            BackupSession session = Adopt(request) ?? Create(request);
            return Repeat(sessions.GetOrAdd(session), request);
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw ContractErrors.FromStorage(e, "creating the archive");
        }
    }

    public async Task<BackupStats> CleanupAsync(BackupCleanupRequest request, CancellationToken cancellationToken)
    {
        if (!sessions.TryGet(request.BackupId, out BackupSession? session))
        {
            return CleanupUnknown(request);
        }
        if (!request.Success)
        {
            await DiscardAsync(session, request.Error, cancellationToken);
            return new BackupStats();
        }

        using IDisposable guestLock = await locks.AcquireAsync(session.GuestId, cancellationToken);
        BackupPhase phase;
        lock (session.Gate)
        {
            phase = session.Phase;
        }
        switch (phase)
        {
            case BackupPhase.Completed:
                return session.Stats!;
            case BackupPhase.DataStored:
                break;
            case BackupPhase.Discarded:
                throw ProviderErrors.Create(StatusCode.FailedPrecondition, "the backup was already cleaned up as failed");
            case BackupPhase.Running:
                throw ProviderErrors.Create(ErrorReason.OperationInProgress,
                    "BackupVm is still running for this backup");
            default:
                // Marking an archive without data complete would list a backup that cannot be restored.
                guestLock.Dispose();
                await DiscardAsync(session, "BackupCleanup(success) before any data was stored", cancellationToken);
                throw ProviderErrors.Create(StatusCode.FailedPrecondition,
                    $"no data was stored for backup '{request.BackupId}'; the archive was removed");
        }

        try
        {
            await fencing.CheckAsync(session.JobId, cancellationToken);
        }
        catch (RpcException)
        {
            // A stale holder's data never becomes a listed backup.
            guestLock.Dispose();
            await DiscardAsync(session, "stale fencing token at commit", cancellationToken);
            throw;
        }
        try
        {
            BackupStats stats = Finish(session);
            lock (session.Gate)
            {
                session.Stats = stats;
                session.Phase = BackupPhase.Completed;
            }
            LogCompleted(logger, session.Archive.Name, stats.ArchiveSizeBytes, stats.RestoredSizeBytes);
            return stats;
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw ContractErrors.FromStorage(e, "finishing the archive");
        }
    }

    /// <summary>Stops whatever a job's backups still run and removes their unfinished archives.</summary>
    public async Task CleanupJobAsync(string jobId, CancellationToken cancellationToken)
    {
        foreach (BackupSession session in sessions.RemoveJob(jobId))
        {
            bool unfinished;
            lock (session.Gate)
            {
                unfinished = session.Phase is not (BackupPhase.Completed or BackupPhase.Discarded);
            }
            if (unfinished)
            {
                await DiscardAsync(session, "JobCleanup before BackupCleanup", cancellationToken);
            }
        }
    }

    /// <summary>Stops a running BackupVm, waits for it to let go, and removes the archive unless it is complete.</summary>
    public async Task DiscardAsync(BackupSession session, string reason, CancellationToken cancellationToken)
    {
        await session.Abort.CancelAsync();
        try
        {
            await session.Running.WaitAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The copy's own failure was reported to the host by BackupVm; here it only matters that it stopped.
        }
        using IDisposable guestLock = await locks.AcquireAsync(session.GuestId, cancellationToken);
        lock (session.Gate)
        {
            if (session.Phase is BackupPhase.Completed or BackupPhase.Discarded)
            {
                return;
            }
        }
        try
        {
            store.RemoveArchiveDirectory(session.Archive);
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw ContractErrors.FromStorage(e, "removing the failed backup's archive");
        }
        lock (session.Gate)
        {
            session.Phase = BackupPhase.Discarded;
        }
        LogDiscarded(logger, session.Archive.Name, reason);
    }

    private static string Repeat(BackupSession session, BackupInitRequest request)
    {
        if (session.GuestId != request.GuestId || session.GuestType != request.GuestType || session.JobId != request.JobId)
        {
            throw ProviderErrors.Create(StatusCode.AlreadyExists,
                $"backup_id '{request.BackupId}' is already used for guest {session.GuestId} in job {session.JobId}");
        }
        return session.Archive.Name;
    }

    /// <summary>After a restart: a repeated BackupInit finds the archive it created before by its backup_id.</summary>
    private BackupSession? Adopt(BackupInitRequest request)
    {
        foreach ((ArchiveRef archive, ArchiveManifest manifest) in store.LoadArchives(request.GuestId, includeIncomplete: true))
        {
            if (manifest.BackupId == request.BackupId)
            {
                BackupSession session = SessionFor(request, archive);
                if (manifest.Complete)
                {
                    session.Phase = BackupPhase.Completed;
                    session.Stats = StatsOf(archive, manifest);
                }
                return session;
            }
        }
        return null;
    }

    private BackupSession Create(BackupInitRequest request)
    {
        DateTimeOffset time = request.BackupTime?.ToDateTimeOffset() ?? timeProvider.GetUtcNow();
        ArchiveRef archive = store.CreateArchiveDirectory(request.GuestId, time);
        store.WriteManifest(archive, new ArchiveManifest
        {
            BackupId = request.BackupId,
            GuestId = request.GuestId,
            GuestType = request.GuestType == GuestType.Vm ? ArchiveManifest.GuestTypeVm : ArchiveManifest.GuestTypeContainer,
            BackupTime = time,
            GuestName = request.GuestName,
            Notes = TruncateUtf8(request.Notes, MaxNotesBytes),
        });
        LogCreated(logger, archive.Name, request.BackupId);
        return SessionFor(request, archive);
    }

    private static BackupSession SessionFor(BackupInitRequest request, ArchiveRef archive) => new()
    {
        BackupId = request.BackupId,
        JobId = request.JobId,
        GuestId = request.GuestId,
        GuestType = request.GuestType,
        Archive = archive,
    };

    /// <summary>Makes the data durable, then (and only then) marks the archive complete and moves the chain to it.</summary>
    private BackupStats Finish(BackupSession session)
    {
        foreach (ManifestVolume volume in session.Volumes)
        {
            using var handle = File.OpenHandle(store.FileIn(session.Archive, volume.File), FileMode.Open, FileAccess.Read);
            RandomAccess.FlushToDisk(handle);
        }
        ArchiveManifest manifest = store.TryReadManifest(session.Archive)
            ?? throw new IOException($"the manifest of {session.Archive.Name} is missing");
        manifest.Volumes.Clear();
        manifest.Volumes.AddRange(session.Volumes);
        manifest.Complete = true;
        manifest.CompletedAt = timeProvider.GetUtcNow();
        store.WriteManifest(session.Archive, manifest);

        IncrementalState state = store.ReadIncrementalState(session.GuestId);
        // Only VM images are bases for incrementals; a container's tree is always stored whole.
        foreach (ManifestVolume volume in session.Volumes.Where(_ => session.GuestType == GuestType.Vm))
        {
            state.LastArchiveByDevice[volume.Device] = session.Archive.Name;
        }
        store.WriteIncrementalState(session.GuestId, state);
        return StatsOf(session.Archive, manifest);
    }

    private BackupStats StatsOf(ArchiveRef archive, ArchiveManifest manifest) => new()
    {
        ArchiveSizeBytes = (ulong)DiskUsage.OfTree(store.DirectoryOf(archive)),
        RestoredSizeBytes = (ulong)manifest.RestoredSizeBytes,
    };

    /// <summary>
    /// A BackupCleanup for a backup_id this process does not know (it restarted): a failure removes the unfinished
    /// archive if there is one; a success can only be confirmed for an archive that is already complete.
    /// </summary>
    private BackupStats CleanupUnknown(BackupCleanupRequest request)
    {
        try
        {
            foreach ((ArchiveRef archive, ArchiveManifest manifest) in store.LoadArchives(null, includeIncomplete: true))
            {
                if (manifest.BackupId != request.BackupId)
                {
                    continue;
                }
                if (manifest.Complete)
                {
                    return request.Success ? StatsOf(archive, manifest) : new BackupStats();
                }
                store.RemoveArchiveDirectory(archive);
                LogDiscarded(logger, archive.Name, "BackupCleanup after a provider restart");
            }
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw ContractErrors.FromStorage(e, "looking for the backup's archive");
        }
        return request.Success ? throw ContractErrors.UnknownBackup(request.BackupId) : new BackupStats();
    }

    private static string TruncateUtf8(string text, int maxBytes)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(text);
        if (bytes.Length <= maxBytes)
        {
            return text;
        }
        // Cut before a character, never inside one: back off over UTF-8 continuation bytes.
        int cut = maxBytes;
        while (cut > 0 && (bytes[cut] & 0xC0) == 0x80)
        {
            cut--;
        }
        return System.Text.Encoding.UTF8.GetString(bytes, 0, cut);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Started backup {Archive} ({BackupId})")]
    private static partial void LogCreated(ILogger logger, string archive, string backupId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Completed backup {Archive}: {StoredBytes} bytes stored for {RestoredBytes}")]
    private static partial void LogCompleted(ILogger logger, string archive, ulong storedBytes, ulong restoredBytes);

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed failed backup {Archive}: {Reason}")]
    private static partial void LogDiscarded(ILogger logger, string archive, string reason);
}
