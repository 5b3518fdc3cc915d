namespace Grpc.Backup.Containers;

/// <summary>
/// Freezes and thaws the running container (e.g. through its cgroup freezer or <c>lxc-freeze</c>), which only the
/// caller knows how to do. The backup calls <see cref="ThawAsync"/> after every successful <see cref="FreezeAsync"/>,
/// on every path, and keeps the frozen window as short as it can (the second rsync pass, or taking the snapshots).
/// </summary>
public interface IContainerFreezer
{
    Task FreezeAsync(CancellationToken cancellationToken);

    Task ThawAsync(CancellationToken cancellationToken);
}
