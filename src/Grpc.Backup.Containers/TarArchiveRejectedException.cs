namespace Grpc.Backup.Containers;

/// <summary>An untrusted tar archive was refused; the message says why and names the member.</summary>
public sealed class TarArchiveRejectedException : Exception
{
    public TarArchiveRejectedException()
    {
    }

    public TarArchiveRejectedException(string message)
        : base(message)
    {
    }

    public TarArchiveRejectedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public TarArchiveRejectedException(string message, string? memberName, Exception? innerException = null)
        : base(message, innerException)
    {
        MemberName = memberName;
    }

    /// <summary>The member that was refused, when one was.</summary>
    public string? MemberName { get; }
}
