namespace Grpc.Backup.Transport.Tests.Support;

/// <summary>
/// A provider listener and a connected host channel in this process, each side with its own
/// table, like the two processes of the protocol.
/// </summary>
internal sealed class Sideband : IAsyncDisposable
{
    private Sideband(TempDirectory directory, FdTransferTable hostInbox, FdTransferTable providerInbox, FdChannelListener listener)
    {
        Directory = directory;
        HostInbox = hostInbox;
        ProviderInbox = providerInbox;
        Listener = listener;
    }

    public TempDirectory Directory { get; }

    public string SocketPath => Directory.File("provider.sock.fds");

    public FdTransferTable HostInbox { get; }

    public FdTransferTable ProviderInbox { get; }

    public FdChannelListener Listener { get; }

    /// <summary>The host's end of the connection.</summary>
    public FdChannel Host { get; private set; } = null!;

    /// <summary>The provider's end of the same connection, found by the channel id from HELLO.</summary>
    public FdChannel Provider { get; private set; } = null!;

    public static async Task<Sideband> StartAsync(
        TimeSpan? providerTtl = null,
        PeerCredentialPolicy? policy = null,
        bool connect = true)
    {
        var directory = new TempDirectory();
        var hostInbox = new FdTransferTable();
        var providerInbox = new FdTransferTable(providerTtl);
        FdChannelListener listener = FdChannelListener.Bind(
            Path.Combine(directory.Path, "provider.sock.fds"),
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite,
            policy ?? PeerCredentialPolicy.RootAndCurrentUser(),
            providerInbox,
            logger: null);
        var sideband = new Sideband(directory, hostInbox, providerInbox, listener);
        if (connect)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            sideband.Host = await FdChannel.ConnectAsync(sideband.SocketPath, hostInbox, logger: null, timeout.Token);
            Assert.True(listener.TryGetChannel(sideband.Host.ChannelId, out FdChannel? provider));
            sideband.Provider = provider;
        }

        return sideband;
    }

    /// <summary>The sending end and the receiving table of one direction.</summary>
    public (FdChannel Sender, FdTransferTable Receiver) Direction(bool hostToProvider) =>
        hostToProvider ? (Host, ProviderInbox) : (Provider, HostInbox);

    public async ValueTask DisposeAsync()
    {
        if (Host is not null)
        {
            await Host.DisposeAsync();
        }

        await Listener.DisposeAsync();
        HostInbox.Dispose();
        ProviderInbox.Dispose();
        Directory.Dispose();
    }
}
