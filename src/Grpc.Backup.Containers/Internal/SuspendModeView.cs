using Grpc.Backup.Containers.Internal.Interop;

namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// Suspend mode: rsync the running container's volumes into a private copy, freeze it, rsync again (only what changed,
/// so the freeze is short), thaw, and archive the copy. rsync runs inside the user namespace as the container's root,
/// so the copy holds exactly what that root can read, with the container's ownership.
/// Limits: needs space for a full copy under <see cref="ContainerBackupOptions.TemporaryDirectory"/>; files owned by
/// ids outside the map are copied (if readable) but owned by the container's root in the copy.
/// </summary>
internal static class SuspendModeView
{
    // rsync: 23 = some files could not be transferred (unreadable for the container's root), 24 = source files vanished.
    private const int PartialTransfer = 23;
    private const int SourceVanished = 24;

    public static async Task<ContainerView> CreateAsync(ViewContext context, CancellationToken cancellationToken)
    {
        IContainerFreezer freezer = context.Options.Freezer
            ?? throw new ContainerBackupException("suspend mode needs a freezer (ContainerBackupOptions.Freezer)");
        string copy = Path.Combine(context.WorkDirectory, "copy");
        CreateOwnedDirectory(copy, context.Namespace.IdMap);

        await CopyAsync(context, copy, cancellationToken);
        await freezer.FreezeAsync(cancellationToken);
        IReadOnlyList<string> warnings;
        try
        {
            // Only the second pass's messages matter: it decides what the copy holds.
            warnings = await CopyAsync(context, copy, cancellationToken);
        }
        finally
        {
            await freezer.ThawAsync(CancellationToken.None);
        }
        return new ContainerView(copy, ["."], warnings);
    }

    private static void CreateOwnedDirectory(string path, IdMap idMap)
    {
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (Libc.lchown(path, idMap.RootHostUid, idMap.RootHostGid) != 0)
        {
            throw new ContainerBackupException($"chown of '{path}' to the container's root failed");
        }
    }

    private static async Task<IReadOnlyList<string>> CopyAsync(ViewContext context, string copy, CancellationToken cancellationToken)
    {
        var warnings = new List<string>();
        await SyncAsync(context, context.Options.RootFileSystem + "/", copy + "/", "", warnings, cancellationToken);
        foreach (IncludedVolume volume in context.Included.OrderBy(v => v.Depth))
        {
            string source = volume.IsDirectory ? volume.HostPath + "/" : volume.HostPath;
            string target = Path.Combine(copy, volume.RelativePath) + (volume.IsDirectory ? "/" : "");
            await SyncAsync(context, source, target, volume.RelativePath, warnings, cancellationToken);
        }
        return warnings;
    }

    private static async Task SyncAsync(ViewContext context, string source, string target, string volumePath, List<string> warnings,
        CancellationToken cancellationToken)
    {
        List<string> arguments =
        [
            "--archive", "--hard-links", "--acls", "--xattrs", "--numeric-ids", "--sparse", "--one-file-system", "--delete", "--mkpath",
        ];
        arguments.AddRange(OtherMountPointFilters(context, volumePath));
        arguments.AddRange(["--", source, target]);
        ProcessResult result = await context.Namespace.RunAsync("rsync", arguments, cancellationToken);
        if (result.ExitCode is PartialTransfer or SourceVanished)
        {
            // rsync names host paths; say which volume of the container they belong to.
            string volume = volumePath.Length == 0 ? "root file system" : "mount point /" + volumePath;
            warnings.AddRange(result.ErrorLines().Select(line => $"{volume}: {line}"));
        }
        else if (result.ExitCode != 0)
        {
            throw new ContainerBackupException($"copying '{source}' failed: {result.Describe()}");
        }
    }

    /// <summary>
    /// Keeps every mount point below <paramref name="volumePath"/> out of that volume's copy: backed-up ones are copied
    /// from their own source (and are protected from --delete by the exclusion), the others must stay empty.
    /// </summary>
    private static IEnumerable<string> OtherMountPointFilters(ViewContext context, string volumePath)
    {
        string prefix = volumePath.Length == 0 ? "" : volumePath + "/";
        IEnumerable<(string Path, bool IsDirectory)> all = context.Included.Select(v => (v.RelativePath, v.IsDirectory))
            .Concat(context.ExcludedRelativePaths.Select(p => (p, true)));
        foreach ((string path, bool isDirectory) in all)
        {
            if (path.Length > prefix.Length && path.StartsWith(prefix, StringComparison.Ordinal))
            {
                // Anchored at the transfer root; ContainerPaths refused wildcard characters, so the path is literal.
                string relative = "/" + path[prefix.Length..];
                yield return "--filter=- " + (isDirectory ? relative + "/*" : relative);
            }
        }
    }
}
