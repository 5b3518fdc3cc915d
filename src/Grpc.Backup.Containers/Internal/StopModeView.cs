namespace Grpc.Backup.Containers.Internal;

/// <summary>Stop mode: the caller says the container is stopped, so its volumes themselves, bound read-only, are consistent.</summary>
internal static class StopModeView
{
    public static async Task<ContainerView> CreateAsync(ViewContext context, CancellationToken cancellationToken)
    {
        string view = Path.Combine(context.WorkDirectory, "view");
        Directory.CreateDirectory(view);
        await ViewMounts.MountTreeAsync(context, context.Options.RootFileSystem, v => v.HostPath, view, cancellationToken);
        return new ContainerView(view, VolumeSources(context), []);
    }

    /// <summary>"." and "./mnt/data" per included mount point, as vzdump reports them in stop and snapshot mode.</summary>
    public static IReadOnlyList<string> VolumeSources(ViewContext context) =>
        [".", .. context.Included.OrderBy(v => v.Depth).Select(v => "./" + v.RelativePath)];
}
