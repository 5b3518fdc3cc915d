namespace Grpc.Backup.Nbd;

/// <summary>
/// The server violated the NBD protocol (bad magic, impossible lengths, data outside the requested
/// range, ...). The connection is torn down when this is raised: the byte stream can no longer be
/// trusted, so every pending request fails with this exception.
/// </summary>
public sealed class NbdProtocolException : IOException
{
    public NbdProtocolException()
        : this("NBD protocol violation")
    {
    }

    public NbdProtocolException(string message)
        : base(message)
    {
    }

    public NbdProtocolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
