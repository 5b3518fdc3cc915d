using Grpc.Backup.Protocol;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Provider;

/// <summary>How a provider listens. Filled from the command line and environment by <see cref="ProviderHost"/>.</summary>
public sealed class ProviderOptions
{
    /// <summary>
    /// The endpoint to bind (<c>--listen unix:PATH</c> or <c>BACKUP_PROVIDER_LISTEN</c>). Ignored when systemd passed
    /// sockets (<c>LISTEN_FDS</c>); then it is learned from the passed socket.
    /// </summary>
    public ProviderEndpoint? Endpoint { get; set; }

    /// <summary>The uids allowed to connect, checked with SO_PEERCRED on both sockets.</summary>
    public PeerCredentialPolicy AllowedPeers { get; set; } = PeerCredentialPolicy.RootAndCurrentUser();

    /// <summary>The mode of the sockets the provider binds itself: 0660 unless the operator narrows it to 0600.</summary>
    public UnixFileMode SocketMode { get; set; } =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite;

    /// <summary>How long a received fd transfer waits to be claimed before it is closed.</summary>
    public TimeSpan FdTransferTimeToLive { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a claim waits for a transfer that has not arrived yet (it may be queued behind the RPC).</summary>
    public TimeSpan FdClaimWait { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Where to serve Prometheus metrics (process and runtime figures), if anywhere: <c>--metrics-listen</c> or
    /// <c>BACKUP_PROVIDER_METRICS_LISTEN</c>, as <c>127.0.0.1:PORT</c> or <c>unix:PATH</c> (bound 0600). Off by default.
    /// </summary>
    public string? MetricsListen { get; set; }

    /// <summary>How long shutdown waits for calls to end after cancelling them.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(10);
}
