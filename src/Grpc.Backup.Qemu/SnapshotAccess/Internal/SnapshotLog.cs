namespace Grpc.Backup.Qemu.Internal;

/// <summary>Null-tolerant front for <see cref="SnapshotAccessOptions.Log"/>.</summary>
internal sealed class SnapshotLog(Action<SnapshotAccessLogLevel, string>? sink)
{
    public void Info(string message) => sink?.Invoke(SnapshotAccessLogLevel.Information, message);

    public void Warning(string message) => sink?.Invoke(SnapshotAccessLogLevel.Warning, message);
}
