using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// Deletes an archive without losing data of any other: every image backed by one of the archive's images is first
/// rebased in qemu-img's safe mode onto the deleted image's own backing (copying in the clusters only the deleted
/// image held), or flattened when the deleted image was a full one; its manifest then names the new parent. Callers
/// hold the guest's lock.
/// </summary>
internal sealed partial class ArchiveDeleter(ArchiveStore store, QemuTools tools, BackupSessionTable backups,
    RestoreSessionTable restores, ILogger<ArchiveDeleter> logger)
{
    /// <summary>
    /// Checks that <paramref name="archive"/> may go: not protected, not being written by a backup, not read by a
    /// restore. Throws the contract's status otherwise.
    /// </summary>
    public void CheckDeletable(ArchiveRef archive, ArchiveManifest manifest)
    {
        if (manifest.Protected)
        {
            throw ProviderErrors.Create(ErrorReason.BackupProtected,
                $"backup '{archive.Name}' is protected; remove the protection first");
        }
        if (!manifest.Complete && backups.Unfinished().Any(s => s.Archive == archive))
        {
            throw ContractErrors.RepositoryLocked($"backup '{archive.Name}' is still being written");
        }
        if (restores.IsInUse(archive))
        {
            throw ContractErrors.RepositoryLocked($"backup '{archive.Name}' is being restored (itself or a backup based on it)");
        }
    }

    /// <summary>Deletes <paramref name="archive"/> after <see cref="CheckDeletable"/> passed. Call under the guest's lock.</summary>
    public async Task DeleteAsync(ArchiveRef archive, ArchiveManifest manifest, CancellationToken cancellationToken)
    {
        foreach ((ArchiveRef child, ArchiveManifest childManifest) in store.LoadArchives(archive.GuestId, includeIncomplete: true))
        {
            bool changed = false;
            foreach (ManifestVolume volume in childManifest.Volumes.Where(v => v.Parent == archive.Name))
            {
                await RebaseAsync(archive, manifest, child, volume, cancellationToken);
                changed = true;
            }
            if (changed)
            {
                store.WriteManifest(child, childManifest);
            }
        }
        store.RemoveArchiveDirectory(archive);
        LogDeleted(logger, archive.Name);
    }

    /// <summary>Removes an archive directory whose manifest cannot be read, unless something is based on it.</summary>
    public void DeleteUnreadable(ArchiveRef archive)
    {
        if (store.LoadArchives(archive.GuestId, includeIncomplete: true).Any(a => a.Manifest.Volumes.Any(v => v.Parent == archive.Name)))
        {
            throw ContractErrors.ArchiveCorrupt(archive.Name, "its manifest is unreadable and other backups are based on it");
        }
        if (backups.Unfinished().Any(s => s.Archive == archive))
        {
            throw ContractErrors.RepositoryLocked($"backup '{archive.Name}' is still being written");
        }
        store.RemoveArchiveDirectory(archive);
    }

    private async Task RebaseAsync(ArchiveRef deleted, ArchiveManifest deletedManifest, ArchiveRef child, ManifestVolume volume,
        CancellationToken cancellationToken)
    {
        ManifestVolume deletedVolume = deletedManifest.FindVolume(volume.Device)
            ?? throw ContractErrors.ArchiveCorrupt(child.Name, $"its {volume.Device} is based on '{deleted.Name}', which has no such device");
        string directory = store.DirectoryOf(child);
        if (deletedVolume.Parent is { } grandparentName && ArchiveStore.TryParse(grandparentName) is { } grandparent
            && store.TryReadManifest(grandparent)?.FindVolume(volume.Device) is { } grandparentVolume)
        {
            await tools.Img.RebaseAsync(directory, volume.File, ArchiveStore.RelativeImagePath(grandparent, grandparentVolume),
                grandparentVolume.Format, cancellationToken);
            volume.Parent = grandparent.Name;
            LogRebased(logger, child.Name, volume.Device, deleted.Name, grandparent.Name);
        }
        else
        {
            await tools.Img.RebaseAsync(directory, volume.File, newBacking: null, newBackingFormat: null, cancellationToken);
            volume.Parent = null;
            LogFlattened(logger, child.Name, volume.Device, deleted.Name);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Deleted backup {Archive}")]
    private static partial void LogDeleted(ILogger logger, string archive);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rebased {Archive} {Device} from {Deleted} onto {NewParent}")]
    private static partial void LogRebased(ILogger logger, string archive, string device, string deleted, string newParent);

    [LoggerMessage(Level = LogLevel.Information, Message = "Flattened {Archive} {Device}: its base {Deleted} is deleted")]
    private static partial void LogFlattened(ILogger logger, string archive, string device, string deleted);
}
