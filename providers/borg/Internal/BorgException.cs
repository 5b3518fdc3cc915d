namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// A borg command that failed (exit code 2 or more, or killed). <see cref="MessageId"/> is borg's machine-readable
/// msgid from <c>--log-json</c> (e.g. <c>LockTimeout</c>, <c>PassphraseWrong</c>), when it printed one.
/// </summary>
internal sealed class BorgException : Exception
{
    public BorgException(string message, int exitCode, string? messageId) : base(message)
    {
        ExitCode = exitCode;
        MessageId = messageId;
    }

    public BorgException()
    {
    }

    public BorgException(string message) : base(message)
    {
    }

    public BorgException(string message, Exception innerException) : base(message, innerException)
    {
    }

    public int ExitCode { get; }

    public string? MessageId { get; }
}
