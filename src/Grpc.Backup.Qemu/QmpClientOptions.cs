namespace Grpc.Backup.Qemu;

/// <summary>Tuning knobs for <see cref="QmpClient"/>.</summary>
public sealed class QmpClientOptions
{
    /// <summary>Default bound for one QMP message: far above any real reply, far below harm.</summary>
    public const int DefaultMaxMessageBytes = 16 * 1024 * 1024;

    private const int MinMaxMessageBytes = 1024;
    private const int MaxMaxMessageBytes = 1024 * 1024 * 1024;

    private readonly int _maxMessageBytes = DefaultMaxMessageBytes;
    private readonly TimeSpan _handshakeTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Upper bound on connecting, the greeting and <c>qmp_capabilities</c>. A peer that accepts and stays silent (a
    /// hung QEMU, or a monitor already serving its one client) otherwise stalls the caller forever; the connect then
    /// fails with a <see cref="TimeoutException"/>. Generous by default: a QEMU busy under TCG answers in seconds.
    /// </summary>
    public TimeSpan HandshakeTimeout
    {
        get => _handshakeTimeout;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(value, TimeSpan.Zero);
            _handshakeTimeout = value;
        }
    }

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
