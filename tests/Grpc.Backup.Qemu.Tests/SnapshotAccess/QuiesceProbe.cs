namespace Grpc.Backup.Qemu.Tests.SnapshotAccess;

/// <summary>A quiesce handle that runs a check when the window ends.</summary>
internal sealed class QuiesceProbe(Func<Task> onExit) : IAsyncDisposable
{
    public async ValueTask DisposeAsync() => await onExit();
}
