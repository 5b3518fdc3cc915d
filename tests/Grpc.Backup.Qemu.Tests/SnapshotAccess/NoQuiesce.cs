namespace Grpc.Backup.Qemu.Tests.SnapshotAccess;

/// <summary>
/// A quiesce that does nothing: qemu-storage-daemon has no run state, and the tests hold their own
/// writers across setup instead, which gives the same guarantee.
/// </summary>
internal sealed class NoQuiesce : IAsyncDisposable
{
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
