namespace Grpc.Backup.Containers.Tests;

/// <summary>
/// Tests that mount file systems on the host (btrfs on a loop device, tmpfs) run alone: every namespace holder another
/// test starts meanwhile takes a private copy of the host's mount table, which pins those mounts (and keeps the loop
/// device attached) until that holder ends.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HostMountsCollection
{
    public const string Name = "host mounts";
}
