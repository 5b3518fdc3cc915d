namespace Grpc.Backup.Containers;

/// <summary>
/// Freezes a container through its cgroup v2 directory: writes <c>cgroup.freeze</c> and waits until
/// <c>cgroup.events</c> reports <c>frozen 1</c> (the kernel freezes tasks asynchronously), as <c>lxc-freeze</c> does.
/// </summary>
public sealed class CgroupFreezer(string cgroupDirectory) : IContainerFreezer
{
    private static readonly TimeSpan FreezeTimeout = TimeSpan.FromSeconds(30);

    public Task FreezeAsync(CancellationToken cancellationToken) => SetAsync(frozen: true, cancellationToken);

    public Task ThawAsync(CancellationToken cancellationToken) => SetAsync(frozen: false, cancellationToken);

    private async Task SetAsync(bool frozen, CancellationToken cancellationToken)
    {
        string control = Path.Combine(cgroupDirectory, "cgroup.freeze");
        if (!File.Exists(control))
        {
            throw new ContainerBackupException($"'{cgroupDirectory}' is not a cgroup v2 directory with a freezer (no cgroup.freeze)");
        }
        await File.WriteAllTextAsync(control, frozen ? "1" : "0", cancellationToken);
        string expected = frozen ? "frozen 1" : "frozen 0";
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(FreezeTimeout);
        while (!(await File.ReadAllLinesAsync(Path.Combine(cgroupDirectory, "cgroup.events"), timeout.Token)).Contains(expected))
        {
            await Task.Delay(10, timeout.Token);
        }
    }
}
