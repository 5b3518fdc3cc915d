using System.Globalization;
using System.Text;
using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Backup.Providers.Directory.Internal;
using Grpc.Core;

namespace Grpc.Backup.Providers.Directory;

/// <summary>
/// The Repository service: listing, stat, chain-safe delete, prune, attributes and capacity of the repository
/// directory. Operations that change a guest's backups hold the guest's lock, but give up with REPOSITORY_LOCKED
/// rather than queue for long behind a running backup.
/// </summary>
internal sealed class DirectoryRepositoryService(ArchiveStore store, GuestLocks locks, ArchiveDeleter deleter) : Repository.RepositoryBase
{
    private const int MaxNotesBytes = 4096;
    private const int DefaultPageSize = 1000;
    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(10);

    public override Task<ListBackupsResponse> ListBackups(ListBackupsRequest request, ServerCallContext context)
    {
        string? guestId = GuestFilter(request.GuestId);
        int offset = 0;
        if (request.PageToken.Length > 0
            && (!int.TryParse(request.PageToken, NumberStyles.None, CultureInfo.InvariantCulture, out offset) || offset < 0))
        {
            throw ContractErrors.InvalidArgument("page_token is not one this provider returned");
        }
        int pageSize = request.MaxEntries == 0 ? DefaultPageSize : (int)Math.Min(request.MaxEntries, DefaultPageSize);
        return Guard("listing backups", () =>
        {
            List<(ArchiveRef Archive, ArchiveManifest Manifest)> archives = NewestFirst(store.LoadArchives(guestId, includeIncomplete: false));
            var response = new ListBackupsResponse();
            foreach ((ArchiveRef archive, ArchiveManifest manifest) in archives.Skip(offset).Take(pageSize))
            {
                response.Backups.Add(Entry(archive, manifest));
            }
            if (offset + pageSize < archives.Count)
            {
                response.NextPageToken = (offset + pageSize).ToString(CultureInfo.InvariantCulture);
            }
            return Task.FromResult(response);
        });
    }

    public override Task<StatBackupResponse> StatBackup(StatBackupRequest request, ServerCallContext context)
    {
        ArchiveRef archive = ArchiveStore.Resolve(request.ArchiveName);
        return Guard("reading the backup", () =>
            Task.FromResult(new StatBackupResponse { Backup = Entry(archive, store.ReadComplete(archive)) }));
    }

    public override async Task<DeleteBackupResponse> DeleteBackup(DeleteBackupRequest request, ServerCallContext context)
    {
        string? problem = Grpc.Backup.Protocol.ArchiveName.Check(request.ArchiveName);
        if (problem is not null)
        {
            throw ContractErrors.InvalidArgument(problem);
        }
        if (ArchiveStore.TryParse(request.ArchiveName) is not { } archive)
        {
            // Not a name this provider ever gives out: there is nothing to delete.
            return new DeleteBackupResponse();
        }
        using IDisposable guestLock = await locks.AcquireOrFailAsync(archive.GuestId, LockTimeout, context.CancellationToken);
        return await Guard("deleting the backup", async () =>
        {
            if (store.TryReadManifest(archive) is not { } manifest)
            {
                if (store.ArchiveDirectoryExists(archive))
                {
                    deleter.DeleteUnreadable(archive);
                }
                return new DeleteBackupResponse();
            }
            deleter.CheckDeletable(archive, manifest);
            await deleter.DeleteAsync(archive, manifest, context.CancellationToken);
            return new DeleteBackupResponse();
        });
    }

    public override async Task<PruneBackupsResponse> PruneBackups(PruneBackupsRequest request, ServerCallContext context)
    {
        string? guestFilter = GuestFilter(request.GuestId);
        RetentionPolicy policy = request.Policy ?? new RetentionPolicy();
        List<string> guests = await Guard("listing guests", () =>
            Task.FromResult(guestFilter is null ? store.EnumerateGuestIds().Order(StringComparer.Ordinal).ToList() : [guestFilter]));
        var response = new PruneBackupsResponse();
        foreach (string guest in guests)
        {
            using IDisposable guestLock = await locks.AcquireOrFailAsync(guest, LockTimeout, context.CancellationToken);
            await Guard("pruning backups", async () =>
            {
                Dictionary<ArchiveRef, ArchiveManifest> archives = store.LoadArchives(guest, includeIncomplete: false)
                    .ToDictionary(a => a.Archive, a => a.Manifest);
                IReadOnlyList<RetentionDecision<ArchiveRef>> decisions = RetentionPlanner.Plan(
                    archives.Select(a => new RetentionCandidate<ArchiveRef>(a.Key, a.Key.Name, a.Value.BackupTime, a.Value.Protected)), policy, TimeZoneInfo.Local);
                if (!request.DryRun)
                {
                    // Check every removal first, so a backup in use fails the prune before anything is gone.
                    foreach (RetentionDecision<ArchiveRef> decision in decisions.Where(d => !d.Keep))
                    {
                        deleter.CheckDeletable(decision.Archive, archives[decision.Archive]);
                    }
                    // Newest first: each rebase then copies only one backup's own changes into the kept one above it.
                    foreach (RetentionDecision<ArchiveRef> decision in decisions.Where(d => !d.Keep))
                    {
                        // Re-read: an earlier deletion may have rebased this one's images and rewritten its manifest.
                        if (store.TryReadManifest(decision.Archive) is { } manifest)
                        {
                            await deleter.DeleteAsync(decision.Archive, manifest, context.CancellationToken);
                        }
                    }
                }
                foreach (RetentionDecision<ArchiveRef> decision in decisions)
                {
                    response.Decisions.Add(new PruneBackupsResponse.Types.Decision
                    {
                        ArchiveName = decision.Archive.Name,
                        Keep = decision.Keep,
                        Reason = decision.Reason,
                    });
                }
                return true;
            });
        }
        return response;
    }

    public override async Task<UpdateBackupAttributesResponse> UpdateBackupAttributes(UpdateBackupAttributesRequest request,
        ServerCallContext context)
    {
        ArchiveRef archive = ArchiveStore.Resolve(request.ArchiveName);
        if (request.HasNotes && Encoding.UTF8.GetByteCount(request.Notes) > MaxNotesBytes)
        {
            throw ContractErrors.InvalidArgument($"notes are {Encoding.UTF8.GetByteCount(request.Notes)} bytes; at most {MaxNotesBytes} are allowed");
        }
        using IDisposable guestLock = await locks.AcquireOrFailAsync(archive.GuestId, LockTimeout, context.CancellationToken);
        return await Guard("updating the backup's attributes", () =>
        {
            ArchiveManifest manifest = store.ReadComplete(archive);
            if (request.HasNotes)
            {
                manifest.Notes = request.Notes;
            }
            if (request.HasProtected)
            {
                manifest.Protected = request.Protected;
            }
            if (request.HasNotes || request.HasProtected)
            {
                store.WriteManifest(archive, manifest);
            }
            return Task.FromResult(new UpdateBackupAttributesResponse { Backup = Entry(archive, manifest) });
        });
    }

    public override Task<GetCapacityResponse> GetCapacity(GetCapacityRequest request, ServerCallContext context) =>
        Guard("reading the repository's capacity", () =>
        {
            if (!System.IO.Directory.Exists(store.Root))
            {
                throw new DirectoryNotFoundException($"the repository directory {store.Root} does not exist");
            }
            (ulong total, ulong used, ulong available) = FileSystemCapacity.Of(store.Root);
            return Task.FromResult(new GetCapacityResponse { TotalBytes = total, UsedBytes = used, AvailableBytes = available });
        });

    private BackupEntry Entry(ArchiveRef archive, ArchiveManifest manifest) => new()
    {
        ArchiveName = archive.Name,
        GuestId = archive.GuestId,
        GuestType = manifest.GuestType == ArchiveManifest.GuestTypeVm ? GuestType.Vm : GuestType.Container,
        BackupTime = Timestamp.FromDateTimeOffset(manifest.BackupTime),
        StoredSizeBytes = (ulong)DiskUsage.OfTree(store.DirectoryOf(archive)),
        RestoredSizeBytes = (ulong)manifest.RestoredSizeBytes,
        Protected = manifest.Protected,
        Notes = manifest.Notes,
        Incremental = manifest.IsIncremental,
    };

    private static List<(ArchiveRef Archive, ArchiveManifest Manifest)> NewestFirst(List<(ArchiveRef Archive, ArchiveManifest Manifest)> archives) =>
        archives.OrderByDescending(a => a.Manifest.BackupTime)
            .ThenByDescending(a => a.Archive.Name, StringComparer.Ordinal)
            .ToList();

    private static string? GuestFilter(string guestId)
    {
        if (guestId.Length == 0)
        {
            return null;
        }
        return ProtocolNames.IsValidGuestId(guestId)
            ? guestId
            : throw ContractErrors.InvalidArgument($"guest_id '{guestId}' does not match [A-Za-z0-9._-]{{1,64}}");
    }

    /// <summary>Runs a repository operation, turning file system failures into the contract's statuses.</summary>
    private static async Task<T> Guard<T>(string what, Func<Task<T>> operation)
    {
        try
        {
            return await operation();
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw ContractErrors.FromStorage(e, what);
        }
    }
}
