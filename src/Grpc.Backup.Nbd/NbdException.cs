using System.Globalization;

namespace Grpc.Backup.Nbd;

/// <summary>
/// The server completed a command with an error. The connection stays usable.
/// <see cref="Command"/>, <see cref="Offset"/> and <see cref="Length"/> identify the failed request
/// (so a failed READ is distinguishable from a failed WRITE), <see cref="Errno"/> is the wire error.
/// </summary>
public sealed class NbdException : IOException
{
    public NbdException()
        : this("NBD command failed")
    {
    }

    public NbdException(string message)
        : base(message)
    {
    }

    public NbdException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public NbdException(NbdCommand command, long offset, long length, int errno, string? serverMessage = null, long? errorOffset = null)
        : base(FormatMessage(command, offset, length, errno, serverMessage, errorOffset))
    {
        Command = command;
        Offset = offset;
        Length = length;
        Errno = errno;
        ServerMessage = serverMessage;
        ErrorOffset = errorOffset;
        HResult = errno;
    }

    /// <summary>The command that failed.</summary>
    public NbdCommand Command { get; }

    /// <summary>Offset of the failed request.</summary>
    public long Offset { get; }

    /// <summary>Length of the failed request.</summary>
    public long Length { get; }

    /// <summary>The error number the server sent (a Linux errno value).</summary>
    public int Errno { get; }

    /// <summary><see cref="Errno"/> as an enum; values outside the protocol's list keep their number.</summary>
    public NbdError Error => (NbdError)Errno;

    /// <summary>The errno's symbolic name, e.g. "EIO".</summary>
    public string ErrorName => Internal.NbdErrno.Name(Errno);

    /// <summary>The human readable message the server attached to a structured error, if any.</summary>
    public string? ServerMessage { get; }

    /// <summary>For NBD_REPLY_TYPE_ERROR_OFFSET: the exact offset at which the error occurred.</summary>
    public long? ErrorOffset { get; }

    /// <summary>True when the failed command was a READ: the destination buffer holds undefined data.</summary>
    public bool IsReadError => Command == NbdCommand.Read;

    private static string FormatMessage(NbdCommand command, long offset, long length, int errno, string? serverMessage, long? errorOffset)
    {
        var text = string.Create(CultureInfo.InvariantCulture,
            $"NBD {Internal.NbdErrno.CommandName(command)} failed (offset {offset}, length {length}): {Internal.NbdErrno.Name(errno)} ({Internal.NbdErrno.Describe(errno)})");
        if (errorOffset is long at)
        {
            text += string.Create(CultureInfo.InvariantCulture, $" at offset {at}");
        }

        if (!string.IsNullOrEmpty(serverMessage))
        {
            text += ": " + serverMessage;
        }

        return text;
    }
}
