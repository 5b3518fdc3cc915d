namespace Grpc.Backup.Orchestrator.Inventory;

/// <summary>A configuration file is invalid. The message names the file, the line and the reason.</summary>
public sealed class ConfigException : Exception
{
    public ConfigException()
    {
    }

    public ConfigException(string message) : base(message)
    {
    }

    public ConfigException(string message, Exception innerException) : base(message, innerException)
    {
    }

    public ConfigException(string file, int line, string reason) : base($"{file}:{line}: {reason}")
    {
        File = file;
        Line = line;
        Reason = reason;
    }

    public string? File { get; }

    public int Line { get; }

    public string? Reason { get; }
}
