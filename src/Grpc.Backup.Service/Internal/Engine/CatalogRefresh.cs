using Grpc.Backup.Host;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Service.Internal.Catalog;

namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>
/// Re-reads a storage's backups from its provider (the source of truth) into the catalog. Entries are checked first:
/// a provider's reply is untrusted input.
/// </summary>
internal static class CatalogRefresh
{
    private const int MaxPages = 10_000;

    /// <summary>
    /// The most backups one refresh takes from a provider (all pages together): the catalog holds what exists, and a
    /// provider that lists without end must not grow the host's memory without end.
    /// </summary>
    public const int MaxEntries = 1_000_000;

    public static async Task<int> RefreshAsync(CatalogDatabase catalog, ProviderConnection provider, string storage, string? guestId,
        CancellationToken cancellationToken)
    {
        var entries = new List<BackupEntry>();
        string token = "";
        for (int page = 0; ; page++)
        {
            if (page == MaxPages)
            {
                throw new InvalidOperationException($"storage {storage}: ListBackups did not end after {MaxPages} pages");
            }
            var response = await provider.Repository.ListBackupsAsync(new ListBackupsRequest { GuestId = guestId ?? "", PageToken = token },
                cancellationToken: cancellationToken);
            if (entries.Count + response.Backups.Count > MaxEntries)
            {
                throw new InvalidOperationException($"storage {storage}: ListBackups returned more than {MaxEntries} backups");
            }
            foreach (BackupEntry entry in response.Backups)
            {
                if (ArchiveName.Check(entry.ArchiveName) is { } problem)
                {
                    throw new InvalidOperationException($"storage {storage}: ListBackups returned an invalid archive name: {problem}");
                }
                if (guestId is not null && entry.GuestId != guestId)
                {
                    throw new InvalidOperationException($"storage {storage}: ListBackups for guest {guestId} returned a backup of guest '{entry.GuestId}'");
                }
                entries.Add(entry);
            }
            token = response.NextPageToken;
            if (token.Length == 0)
            {
                break;
            }
        }
        StateRetention.ForgetManifests(catalog.ReplaceBackups(storage, guestId, entries));
        return entries.Count;
    }
}
