using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// The lifecycle around the data call: naming the archive (BackupInit), making it final or removing it
/// (BackupCleanup), and winding up what a job left (JobCleanup). Final means renamed from NAME.partial to NAME in
/// borg, marked complete in the catalog, and, for VMs, recorded as the base of the next incremental; in that order,
/// so a crash in between leaves at worst a complete archive the next incremental does not use.
/// </summary>
internal sealed partial class BackupFinisher(BorgRepository repository, RepositoryLock repositoryLock, Catalog catalog,
    BackupSessionTable sessions, GuestLocks guestLocks, ILogger<BackupFinisher> logger)
{
    private const int MaxNotesBytes = 4096;

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
            throw ProviderErrors.Create(ErrorReason.UnknownOperation, $"job_id '{request.JobId}' is unknown: run JobInit again");
        }
        using IDisposable guestLock = await guestLocks.AcquireAsync(request.GuestId, cancellationToken);
        if (sessions.TryGet(request.BackupId, out BackupSession? known))
        {
            return known.GuestId == request.GuestId && known.GuestType == request.GuestType
                ? known.Archive.Name
                : throw ProviderErrors.Create(StatusCode.AlreadyExists, $"backup_id '{request.BackupId}' is already used for another guest");
        }
        // The job's listing (JobInit's): another client adding this very name since is caught by the rename at the end.
        IReadOnlySet<string> listing = sessions.ArchivesAtJobStart(request.JobId);
        DateTimeOffset time = (request.BackupTime?.ToDateTimeOffset() ?? DateTimeOffset.UtcNow).ToUniversalTime();
        BorgArchiveName archive = BorgArchiveName.Create(request.GuestId, time);
        // A second backup of the guest within the same second takes the next free second.
        while (listing.Contains(archive.BorgName) || listing.Contains(archive.PartialBorgName) || sessions.Uses(archive))
        {
            time = time.AddSeconds(1);
            archive = BorgArchiveName.Create(request.GuestId, time);
        }
        BackupSession session = sessions.GetOrAdd(new BackupSession
        {
            BackupId = request.BackupId,
            JobId = request.JobId,
            GuestType = request.GuestType,
            Archive = archive,
            GuestName = request.GuestName,
            Notes = TruncateUtf8(request.Notes, MaxNotesBytes),
        });
        return session.Archive.Name;
    }

    public async Task<BackupStats> CleanupAsync(BackupCleanupRequest request, CancellationToken cancellationToken)
    {
        if (!sessions.TryGet(request.BackupId, out BackupSession? session))
        {
            // Lost in a restart: a failure needs nothing more (the partial archive is removed by the next JobCleanup
            // of the guest or stays unlisted); a success cannot be confirmed.
            return request.Success
                ? throw ContractErrors.UnknownBackup(request.BackupId)
                : new BackupStats();
        }
        if (!request.Success)
        {
            await DiscardAsync(session, request.Error, cancellationToken);
            return new BackupStats();
        }
        using IDisposable guestLock = await guestLocks.AcquireAsync(session.GuestId, cancellationToken);
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
            default:
                throw ProviderErrors.Create(StatusCode.FailedPrecondition,
                    $"backup '{session.BackupId}' cannot succeed: its data was not stored (state {phase})");
        }
        CatalogEntry entry = session.Stored!;
        using (await repositoryLock.AcquireAsync(cancellationToken))
        {
            try
            {
                await repository.RenameAsync(session.Archive.PartialBorgName, session.Archive.BorgName, cancellationToken);
                sessions.RecordStored(session.JobId, session.Archive.BorgName);
            }
            catch (BorgException e)
            {
                throw BorgErrors.From(e, "finishing the archive");
            }
        }
        try
        {
            entry.Complete = true;
            catalog.Write(session.Archive, entry);
            if (session.GuestType == GuestType.Vm)
            {
                IncrementalState state = catalog.ReadIncremental(session.GuestId);
                foreach (VolumeMetadata volume in entry.Metadata.Volumes)
                {
                    state.Devices[volume.Device] = new IncrementalBase(session.Archive.BorgName, volume.SizeBytes);
                }
                catalog.WriteIncremental(session.GuestId, state);
            }
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw BorgErrors.FromState(e, "recording the finished archive");
        }
        var stats = new BackupStats
        {
            ArchiveSizeBytes = (ulong)entry.DeduplicatedSize,
            RestoredSizeBytes = (ulong)entry.OriginalSize,
            CompressedSizeBytes = (ulong)entry.CompressedSize,
        };
        lock (session.Gate)
        {
            session.Stats = stats;
            session.Phase = BackupPhase.Completed;
        }
        LogCompleted(logger, session.Archive.Name, entry.DeduplicatedSize, entry.CompressedSize, entry.OriginalSize);
        return stats;
    }

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
                await DiscardAsync(session, "the job ended without BackupCleanup", cancellationToken);
            }
        }
    }

    /// <summary>Stops a data call still running, waits for it, and deletes the partial archive if borg wrote one.</summary>
    public async Task DiscardAsync(BackupSession session, string reason, CancellationToken cancellationToken)
    {
        Task running;
        lock (session.Gate)
        {
            if (session.Phase is BackupPhase.Completed or BackupPhase.Discarded)
            {
                return;
            }
            running = session.Running;
        }
        await session.Abort.CancelAsync();
        await running.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        using (await repositoryLock.AcquireAsync(cancellationToken))
        {
            try
            {
                Dictionary<string, DateTimeOffset> listing = await repository.ListAsync(cancellationToken);
                if (listing.ContainsKey(session.Archive.PartialBorgName))
                {
                    await repository.DeleteAsync([session.Archive.PartialBorgName], cancellationToken);
                }
            }
            catch (BorgException e)
            {
                throw BorgErrors.From(e, "removing the failed backup's partial archive");
            }
        }
        catalog.Remove(session.Archive);
        lock (session.Gate)
        {
            session.Phase = BackupPhase.Discarded;
        }
        LogDiscarded(logger, session.Archive.Name, reason);
    }

    private static string TruncateUtf8(string text, int maxBytes)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(text) <= maxBytes)
        {
            return text;
        }
        int length = text.Length;
        while (System.Text.Encoding.UTF8.GetByteCount(text.AsSpan(0, length)) > maxBytes)
        {
            length--;
        }
        if (length > 0 && char.IsHighSurrogate(text[length - 1]))
        {
            length--;
        }
        return text[..length];
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "archive {Archive} complete: {Deduplicated} bytes new in the repository, {Compressed} compressed, {Original} restored")]
    private static partial void LogCompleted(ILogger logger, string archive, long deduplicated, long compressed, long original);

    [LoggerMessage(Level = LogLevel.Information, Message = "archive {Archive} discarded: {Reason}")]
    private static partial void LogDiscarded(ILogger logger, string archive, string reason);
}
