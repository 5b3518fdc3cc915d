namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// Builds a view from read-only bind mounts inside the holder's private mount namespace, as host root. The root volume
/// is bound non-recursively: only the volume itself is in the view, never whatever the host has mounted below it, and
/// the backed-up mount points are bound on top explicitly. So the view's mount tree is exactly the backup's content,
/// tar needs no <c>--one-file-system</c>, and a mount point left out is just its empty directory.
/// </summary>
internal static class ViewMounts
{
    /// <summary>Binds <paramref name="rootSource"/> at <paramref name="view"/>, then each included volume on top, shallowest first.</summary>
    public static async Task MountTreeAsync(ViewContext context, string rootSource, Func<IncludedVolume, string> sourceOf, string view,
        CancellationToken cancellationToken)
    {
        await BindReadOnlyAsync(context, rootSource, view, cancellationToken);
        foreach (IncludedVolume volume in context.Included.OrderBy(v => v.Depth))
        {
            // The target lives in the deepest volume containing it: the root, or another included mount point.
            IncludedVolume? parent = context.Included
                .Where(p => volume.RelativePath.StartsWith(p.RelativePath + "/", StringComparison.Ordinal))
                .MaxBy(p => p.Depth);
            string parentRoot = parent is null ? rootSource : sourceOf(parent);
            string inParent = parent is null ? volume.RelativePath : volume.RelativePath[(parent.RelativePath.Length + 1)..];
            string? excludedAbove = context.ExcludedRelativePaths.FirstOrDefault(e => volume.RelativePath.StartsWith(e + "/", StringComparison.Ordinal));
            if (excludedAbove is not null)
            {
                throw new ContainerBackupException($"mount point /{volume.RelativePath} is inside /{excludedAbove}, which is not backed up");
            }
            VolumeChecks.CheckMountTarget(parentRoot, inParent, volume.IsDirectory, "/" + volume.RelativePath);
            await BindReadOnlyAsync(context, sourceOf(volume), Path.Combine(view, volume.RelativePath), cancellationToken);
        }
    }

    private static async Task BindReadOnlyAsync(ViewContext context, string source, string target, CancellationToken cancellationToken)
    {
        // -n: the private namespace has no business in the host's utab.
        ProcessResult result = await context.Namespace.RunAsHostRootAsync("mount",
            ["-n", "--bind", "-o", "ro,nosuid,nodev", "--", source, target], cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new ContainerBackupException($"binding '{source}' read-only at '{target}' failed: {result.Describe()}");
        }
        context.Cleanup.Push($"unmount {target}", async () =>
        {
            ProcessResult umount = await context.Namespace.RunAsHostRootAsync("umount", ["-n", "--", target], CancellationToken.None);
            if (umount.ExitCode != 0)
            {
                throw new IOException(umount.Describe());
            }
        });
    }
}
