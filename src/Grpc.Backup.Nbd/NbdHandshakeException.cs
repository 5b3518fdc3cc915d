namespace Grpc.Backup.Nbd;

/// <summary>
/// The server refused the connection during the handshake: unknown export, unsupported
/// metadata context, TLS required, ... The message says which.
/// </summary>
public sealed class NbdHandshakeException : IOException
{
    public NbdHandshakeException()
        : this("NBD handshake failed")
    {
    }

    public NbdHandshakeException(string message)
        : base(message)
    {
    }

    public NbdHandshakeException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public NbdHandshakeException(string message, NbdOptionError optionError, string? serverMessage)
        : base(message)
    {
        OptionError = optionError;
        ServerMessage = serverMessage;
    }

    /// <summary>The NBD_REP_ERR_* reply that caused the failure, or <see cref="NbdOptionError.None"/>.</summary>
    public NbdOptionError OptionError { get; }

    /// <summary>Text the server attached to its error reply, if any.</summary>
    public string? ServerMessage { get; }
}
