namespace Grpc.Backup.Transport;

/// <summary>How <see cref="ExternalProcess.Start"/> runs a tool.</summary>
public sealed class ExternalProcessOptions
{
    /// <summary>The tool's working directory; null keeps ours.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>Keep stdout for the caller (<see cref="ExternalProcess.RunAsync"/>); otherwise it is read and dropped.</summary>
    public bool CaptureStandardOutput { get; init; }

    /// <summary>Text written to the tool's stdin before it is closed; null closes it at once.</summary>
    public string? StandardInput { get; init; }
}
