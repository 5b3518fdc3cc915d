namespace Grpc.Backup.Transport;

/// <summary>A host tool could not be started, failed (non-zero exit) or did not finish in time.</summary>
public sealed class ExternalProcessException : IOException
{
    public ExternalProcessException()
    {
        ErrorOutput = string.Empty;
    }

    public ExternalProcessException(string message)
        : base(message)
    {
        ErrorOutput = string.Empty;
    }

    public ExternalProcessException(string message, Exception innerException)
        : base(message, innerException)
    {
        ErrorOutput = string.Empty;
    }

    public ExternalProcessException(string message, int exitCode, string errorOutput, Exception? innerException = null)
        : base(message, innerException)
    {
        ExitCode = exitCode;
        ErrorOutput = errorOutput;
    }

    /// <summary>The tool's exit code; -1 when it did not start or did not finish.</summary>
    public int ExitCode { get; } = -1;

    /// <summary>What the tool wrote to stderr (bounded), trimmed.</summary>
    public string ErrorOutput { get; }
}
