namespace Grpc.Backup.Qemu;

/// <summary>The <c>{"QMP":{...}}</c> banner QEMU sends when a client connects.</summary>
public sealed class QmpGreeting
{
    public QmpGreeting(QmpVersion version, IReadOnlyList<string> capabilities)
    {
        ArgumentNullException.ThrowIfNull(version);
        ArgumentNullException.ThrowIfNull(capabilities);
        Version = version;
        Capabilities = capabilities;
    }

    public QmpVersion Version { get; }

    /// <summary>
    /// Capabilities the server offers, e.g. <c>oob</c>. The client enables none of them, so the
    /// server executes commands strictly in order.
    /// </summary>
    public IReadOnlyList<string> Capabilities { get; }
}
