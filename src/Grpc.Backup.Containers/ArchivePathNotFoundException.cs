namespace Grpc.Backup.Containers;

/// <summary>A path asked for (a file restore or a listing) is not in the archive.</summary>
public sealed class ArchivePathNotFoundException : Exception
{
    public ArchivePathNotFoundException()
    {
    }

    public ArchivePathNotFoundException(string path)
        : base($"'{(path.Length == 0 ? "/" : path)}' is not in the archive")
    {
        ArchivePath = path;
    }

    public ArchivePathNotFoundException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The path, as the archive spells it canonically ("" is the root).</summary>
    public string? ArchivePath { get; }
}
