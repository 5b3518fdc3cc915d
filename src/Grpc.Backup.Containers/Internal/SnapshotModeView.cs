namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// Snapshot mode: a read-only btrfs snapshot of the root file system and of each backed-up mount point, taken inside
/// one freeze when a freezer is given (so all volumes are from the same instant), then bound like stop mode.
/// Limits: btrfs only (each volume the top of a subvolume); nested subvolumes inside a volume are not part of its
/// snapshot and appear as empty directories.
/// </summary>
internal static class SnapshotModeView
{
    public static async Task<ContainerView> CreateAsync(ViewContext context, CancellationToken cancellationToken)
    {
        string rootfs = context.Options.RootFileSystem;
        await Btrfs.EnsureSubvolumeAsync(rootfs, "the root file system", cancellationToken);
        foreach (IncludedVolume volume in context.Included)
        {
            if (!volume.IsDirectory)
            {
                throw new ContainerBackupException($"snapshot mode cannot snapshot mount point /{volume.RelativePath}: '{volume.HostPath}' is a file");
            }
            await Btrfs.EnsureSubvolumeAsync(volume.HostPath, $"mount point /{volume.RelativePath}", cancellationToken);
        }

        string rootSnapshot;
        var snapshots = new Dictionary<IncludedVolume, string>(ReferenceEqualityComparer.Instance);
        IContainerFreezer? freezer = context.Options.Freezer;
        if (freezer is not null)
        {
            await freezer.FreezeAsync(cancellationToken);
        }
        try
        {
            rootSnapshot = await SnapshotAsync(context, rootfs, cancellationToken);
            foreach (IncludedVolume volume in context.Included)
            {
                snapshots[volume] = await SnapshotAsync(context, volume.HostPath, cancellationToken);
            }
        }
        finally
        {
            if (freezer is not null)
            {
                await freezer.ThawAsync(CancellationToken.None);
            }
        }

        string view = Path.Combine(context.WorkDirectory, "view");
        Directory.CreateDirectory(view);
        await ViewMounts.MountTreeAsync(context, rootSnapshot, v => snapshots[v], view, cancellationToken);
        return new ContainerView(view, StopModeView.VolumeSources(context), []);
    }

    private static async Task<string> SnapshotAsync(ViewContext context, string source, CancellationToken cancellationToken)
    {
        string snapshot = await Btrfs.SnapshotAsync(source, cancellationToken);
        context.Cleanup.Push($"delete snapshot {snapshot}", () => Btrfs.DeleteAsync(snapshot));
        return snapshot;
    }
}
