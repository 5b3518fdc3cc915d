namespace Grpc.Backup.Qemu;

/// <summary>Severity of a message passed to <see cref="SnapshotAccessOptions.Log"/>.</summary>
public enum SnapshotAccessLogLevel
{
    /// <summary>A step of setup or teardown.</summary>
    Information,

    /// <summary>Something was repaired or could not be undone; worth a look.</summary>
    Warning,
}
