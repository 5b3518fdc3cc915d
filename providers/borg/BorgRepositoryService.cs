using System.Globalization;
using System.Text;
using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Backup.Providers.Borg.Internal;
using Grpc.Core;

namespace Grpc.Backup.Providers.Borg;

/// <summary>
/// The Repository service over <c>borg list</c>, <c>borg delete</c> + <c>borg compact</c> and the catalog. Every
/// archive holds whole images, so delete and prune never have a chain to repair: deduplication keeps the shared
/// blocks as long as any archive uses them. Prune uses the SDK's keep rules (protected archives are kept and not
/// counted), not <c>borg prune</c>, which knows nothing of protection.
/// </summary>
internal sealed class BorgRepositoryService(BorgRepository repository, RepositoryLock repositoryLock, Catalog catalog,
    RestoreSessionTable restores, GuestLocks guestLocks, BorgProviderOptions options) : Repository.RepositoryBase
{
    private const int MaxNotesBytes = 4096;
    private const int DefaultPageSize = 1000;
    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(10);

    public override async Task<ListBackupsResponse> ListBackups(ListBackupsRequest request, ServerCallContext context)
    {
        string? guest = GuestFilter(request.GuestId);
        int offset = 0;
        if (request.PageToken.Length > 0
            && (!int.TryParse(request.PageToken, NumberStyles.None, CultureInfo.InvariantCulture, out offset) || offset < 0))
        {
            throw ContractErrors.InvalidArgument("page_token is not one this provider returned");
        }
        int pageSize = request.MaxEntries == 0 ? DefaultPageSize : (int)Math.Min(request.MaxEntries, DefaultPageSize);
        List<(BorgArchiveName Archive, CatalogEntry Entry)> archives = await LoadAsync(guest, context.CancellationToken);
        var response = new ListBackupsResponse();
        foreach ((BorgArchiveName archive, CatalogEntry entry) in archives.Skip(offset).Take(pageSize))
        {
            response.Backups.Add(Entry(archive, entry));
        }
        if (offset + pageSize < archives.Count)
        {
            response.NextPageToken = (offset + pageSize).ToString(CultureInfo.InvariantCulture);
        }
        return response;
    }

    public override async Task<StatBackupResponse> StatBackup(StatBackupRequest request, ServerCallContext context)
    {
        BorgArchiveName archive = BorgArchiveName.Resolve(request.ArchiveName);
        CatalogEntry entry = await Guard(() => repository.DescribeAsync(archive, null, context.CancellationToken), "reading the archive")
            ?? throw ContractErrors.ArchiveNotFound(archive.Name);
        return new StatBackupResponse { Backup = Entry(archive, entry) };
    }

    public override async Task<DeleteBackupResponse> DeleteBackup(DeleteBackupRequest request, ServerCallContext context)
    {
        BorgArchiveName archive;
        try
        {
            archive = BorgArchiveName.Resolve(request.ArchiveName);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            // A valid name this provider never gives out cannot exist, and deleting what does not exist is OK.
            return new DeleteBackupResponse();
        }
        using IDisposable guestLock = await guestLocks.AcquireOrFailAsync(archive.GuestId, LockTimeout, context.CancellationToken);
        using IDisposable held = await repositoryLock.AcquireOrFailAsync(LockTimeout, context.CancellationToken);
        CatalogEntry? entry = await Guard(() => repository.DescribeAsync(archive, null, context.CancellationToken), "reading the archive");
        if (entry is null)
        {
            catalog.Remove(archive);
            return new DeleteBackupResponse();
        }
        CheckDeletable(archive, entry);
        await Guard(() => repository.DeleteAsync([archive.BorgName], context.CancellationToken), "deleting the archive");
        catalog.Remove(archive);
        return new DeleteBackupResponse();
    }

    public override async Task<PruneBackupsResponse> PruneBackups(PruneBackupsRequest request, ServerCallContext context)
    {
        string? guestFilter = GuestFilter(request.GuestId);
        RetentionPolicy policy = request.Policy ?? new RetentionPolicy();
        using IDisposable held = await repositoryLock.AcquireOrFailAsync(LockTimeout, context.CancellationToken);
        List<(BorgArchiveName Archive, CatalogEntry Entry)> archives = await LoadAsync(guestFilter, context.CancellationToken);
        var response = new PruneBackupsResponse();
        var remove = new List<BorgArchiveName>();
        foreach (IGrouping<string, (BorgArchiveName Archive, CatalogEntry Entry)> guest in archives.GroupBy(a => a.Archive.GuestId))
        {
            IReadOnlyList<RetentionDecision<BorgArchiveName>> decisions = RetentionPlanner.Plan(
                guest.Select(a => new RetentionCandidate<BorgArchiveName>(a.Archive, a.Archive.Name, a.Archive.Time, a.Entry.Protected)),
                policy, TimeZoneInfo.Local);
            foreach (RetentionDecision<BorgArchiveName> decision in decisions)
            {
                response.Decisions.Add(new PruneBackupsResponse.Types.Decision { ArchiveName = decision.Name, Keep = decision.Keep, Reason = decision.Reason });
                if (!decision.Keep)
                {
                    CheckDeletable(decision.Archive, archives.First(a => a.Archive == decision.Archive).Entry);
                    remove.Add(decision.Archive);
                }
            }
        }
        if (!request.DryRun && remove.Count > 0)
        {
            // One borg delete for all of them (one transaction), then one compact.
            await Guard(() => repository.DeleteAsync(remove.Select(a => a.BorgName).ToList(), context.CancellationToken), "pruning");
            remove.ForEach(catalog.Remove);
        }
        return response;
    }

    public override async Task<UpdateBackupAttributesResponse> UpdateBackupAttributes(UpdateBackupAttributesRequest request,
        ServerCallContext context)
    {
        BorgArchiveName archive = BorgArchiveName.Resolve(request.ArchiveName);
        if (request.HasNotes && Encoding.UTF8.GetByteCount(request.Notes) > MaxNotesBytes)
        {
            throw ContractErrors.InvalidArgument($"notes are limited to {MaxNotesBytes} bytes of UTF-8");
        }
        using IDisposable guestLock = await guestLocks.AcquireOrFailAsync(archive.GuestId, LockTimeout, context.CancellationToken);
        CatalogEntry entry = await Guard(() => repository.DescribeAsync(archive, null, context.CancellationToken), "reading the archive")
            ?? throw ContractErrors.ArchiveNotFound(archive.Name);
        if (request.HasNotes)
        {
            entry.Notes = request.Notes;
        }
        if (request.HasProtected)
        {
            entry.Protected = request.Protected;
        }
        catalog.Write(archive, entry);
        return new UpdateBackupAttributesResponse { Backup = Entry(archive, entry) };
    }

    public override async Task<GetCapacityResponse> GetCapacity(GetCapacityRequest request, ServerCallContext context)
    {
        if (!options.IsRemote)
        {
            var drive = new DriveInfo(options.Repository);
            ulong total = (ulong)drive.TotalSize;
            ulong free = (ulong)drive.TotalFreeSpace;
            return new GetCapacityResponse { TotalBytes = total, UsedBytes = total - Math.Min(total, free), AvailableBytes = (ulong)drive.AvailableFreeSpace };
        }
        // A remote repository's file system is not visible through borg; report what the repository itself uses.
        long used = await Guard(async () =>
        {
            using System.Text.Json.JsonDocument info = await repository.InfoAsync(context.CancellationToken);
            return info.RootElement.GetProperty("cache").GetProperty("stats").GetProperty("unique_csize").GetInt64();
        }, "reading the repository's size");
        return new GetCapacityResponse { UsedBytes = (ulong)used };
    }

    private void CheckDeletable(BorgArchiveName archive, CatalogEntry entry)
    {
        if (entry.Protected)
        {
            throw ProviderErrors.Create(ErrorReason.BackupProtected, $"archive '{archive.Name}' is protected");
        }
        if (restores.IsInUse(archive))
        {
            throw ContractErrors.RepositoryLocked($"archive '{archive.Name}' is being restored");
        }
    }

    /// <summary>Complete archives (optionally of one guest), newest first.</summary>
    private async Task<List<(BorgArchiveName Archive, CatalogEntry Entry)>> LoadAsync(string? guest, CancellationToken cancellationToken)
    {
        return await Guard(async () =>
        {
            Dictionary<string, DateTimeOffset> listing = await repository.ListAsync(cancellationToken);
            var archives = new List<(BorgArchiveName, CatalogEntry)>();
            foreach (string name in listing.Keys)
            {
                if (BorgArchiveName.FromBorg(name) is { } archive && (guest is null || archive.GuestId == guest)
                    && await repository.DescribeAsync(archive, listing, cancellationToken) is { } entry)
                {
                    archives.Add((archive, entry));
                }
            }
            return archives.OrderByDescending(a => a.Item1.Time).ThenByDescending(a => a.Item1.Name, StringComparer.Ordinal).ToList();
        }, "listing the repository");
    }

    private static BackupEntry Entry(BorgArchiveName archive, CatalogEntry entry) => new()
    {
        ArchiveName = archive.Name,
        GuestId = archive.GuestId,
        GuestType = entry.Metadata.GuestType == ArchiveMetadata.GuestTypeVm ? GuestType.Vm : GuestType.Container,
        BackupTime = Timestamp.FromDateTimeOffset(archive.Time),
        StoredSizeBytes = (ulong)entry.DeduplicatedSize,
        RestoredSizeBytes = (ulong)entry.OriginalSize,
        Protected = entry.Protected,
        Notes = entry.Notes,
        // Every archive restores on its own; it reused the previous one's blocks, but depends on nothing.
        Incremental = false,
    };

    private static string? GuestFilter(string guestId)
    {
        if (guestId.Length == 0)
        {
            return null;
        }
        return ProtocolNames.IsValidGuestId(guestId) ? guestId : throw ContractErrors.InvalidArgument($"guest_id '{guestId}' is not valid");
    }

    private static async Task<T> Guard<T>(Func<Task<T>> action, string what)
    {
        try
        {
            return await action();
        }
        catch (BorgException e)
        {
            throw BorgErrors.From(e, what);
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw BorgErrors.FromState(e, what);
        }
    }

    private static async Task Guard(Func<Task> action, string what) => await Guard(async () =>
    {
        await action();
        return true;
    }, what);
}
