namespace Grpc.Backup.Qemu;

/// <summary>Tuning knobs for <see cref="QmpClient"/>.</summary>
public sealed class QmpClientOptions
{
    /// <summary>Default bound for one QMP message: far above any real reply, far below harm.</summary>
    public const int DefaultMaxMessageBytes = 16 * 1024 * 1024;

    private const int MinMaxMessageBytes = 1024;
    private const int MaxMaxMessageBytes = 1024 * 1024 * 1024;

    private readonly int _maxMessageBytes = DefaultMaxMessageBytes;

    /// <summary>
    /// Longest line (one JSON message, without its line feed) accepted from the peer. A longer line
    /// closes the connection with a <see cref="QmpProtocolException"/>, so a broken or hostile
    /// peer cannot make the client buffer without limit.
    /// </summary>
    public int MaxMessageBytes
    {
        get => _maxMessageBytes;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, MinMaxMessageBytes);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaxMaxMessageBytes);
            _maxMessageBytes = value;
        }
    }
}
