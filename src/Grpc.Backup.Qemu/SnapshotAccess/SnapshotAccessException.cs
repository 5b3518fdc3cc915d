namespace Grpc.Backup.Qemu;

/// <summary>
/// Setting up or tearing down snapshot access failed. <see cref="DeviceName"/> and <see cref="Step"/> say
/// where; <see cref="Exception.InnerException"/> holds the QMP or I/O error.
/// </summary>
public sealed class SnapshotAccessException : Exception
{
    public SnapshotAccessException()
        : this("Snapshot access failed.")
    {
    }

    public SnapshotAccessException(string message)
        : this(message, innerException: null)
    {
    }

    public SnapshotAccessException(string message, Exception? innerException)
        : base(message, innerException)
    {
        Step = string.Empty;
    }

    public SnapshotAccessException(string? deviceName, string step, string message, Exception? innerException = null)
        : base(deviceName is null ? $"Snapshot access failed at '{step}': {message}" : $"Snapshot access failed for disk '{deviceName}' at '{step}': {message}", innerException)
    {
        DeviceName = deviceName;
        Step = step;
    }

    /// <summary>The disk concerned, or null for a VM-wide step.</summary>
    public string? DeviceName { get; }

    /// <summary>The step that failed, e.g. <c>switch filter to copy-before-write</c>.</summary>
    public string Step { get; }
}
