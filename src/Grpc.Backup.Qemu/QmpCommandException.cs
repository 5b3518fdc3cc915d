namespace Grpc.Backup.Qemu;

/// <summary>
/// QEMU executed a command and answered with <c>{"error":{"class":...,"desc":...}}</c>.
/// The connection stays usable; only this command failed.
/// </summary>
public sealed class QmpCommandException : QmpException
{
    public QmpCommandException()
        : this("A QMP command failed.", innerException: null)
    {
    }

    public QmpCommandException(string message)
        : this(message, innerException: null)
    {
    }

    public QmpCommandException(string message, Exception? innerException)
        : base(message, innerException)
    {
        Command = string.Empty;
        ErrorClass = string.Empty;
        Description = message;
    }

    public QmpCommandException(string command, string errorClass, string description)
        : base($"QMP command '{command}' failed with {errorClass}: {description}")
    {
        Command = command;
        ErrorClass = errorClass;
        Description = description;
    }

    /// <summary>The command that failed, e.g. <c>blockdev-del</c>.</summary>
    public string Command { get; }

    /// <summary>
    /// The QMP error class, e.g. <c>GenericError</c> or <c>CommandNotFound</c>
    /// (see <see cref="QmpErrorClass"/>). Modern QEMU reports almost everything as
    /// <c>GenericError</c>, so callers that need detail must look at <see cref="Description"/>.
    /// </summary>
    public string ErrorClass { get; }

    /// <summary>QEMU's human-readable description of the failure.</summary>
    public string Description { get; }
}
