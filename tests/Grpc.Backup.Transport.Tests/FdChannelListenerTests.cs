using System.Net.Sockets;
using Grpc.Backup.Transport.Tests.Support;

namespace Grpc.Backup.Transport.Tests;

/// <summary>The provider side: the socket file, its mode, and who may connect.</summary>
public sealed class FdChannelListenerTests
{
    private static readonly UnixFileMode _mode0660 =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite;

    [Fact]
    public async Task The_socket_file_has_the_requested_mode_and_goes_with_the_listener()
    {
        await using Sideband sideband = await Sideband.StartAsync(connect: false);

        Assert.Equal(_mode0660, File.GetUnixFileMode(sideband.SocketPath));
        Assert.Equal(sideband.SocketPath, sideband.Listener.SocketPath);
        await sideband.Listener.DisposeAsync();
        Assert.False(Path.Exists(sideband.SocketPath));
    }

    [Fact]
    public async Task Bind_refuses_to_replace_a_file_that_is_not_a_socket()
    {
        using var directory = new TempDirectory();
        string path = directory.CreateFile("provider.sock.fds", "precious");
        using var inbox = new FdTransferTable();

        Assert.Throws<IOException>(
            () => FdChannelListener.Bind(path, _mode0660, PeerCredentialPolicy.RootAndCurrentUser(), inbox, null));
        Assert.Equal("precious", await File.ReadAllTextAsync(path));
    }

    [Fact]
    public async Task Bind_replaces_a_stale_socket_but_not_a_live_one()
    {
        using var directory = new TempDirectory();
        string path = directory.File("provider.sock.fds");
        using var inbox = new FdTransferTable();
        TestInterop.CreateStaleSocketFile(path);
        Assert.True(File.Exists(path));
        await using FdChannelListener listener = FdChannelListener.Bind(path, _mode0660, PeerCredentialPolicy.RootAndCurrentUser(), inbox, null);
        Assert.Throws<IOException>(
            () => FdChannelListener.Bind(path, _mode0660, PeerCredentialPolicy.RootAndCurrentUser(), inbox, null));

        // The live listener is untouched and still serves.
        await using FdChannel channel = await FdChannel.ConnectAsync(path, new FdTransferTable(), null, Soon.Token);
        Assert.True(listener.TryGetChannel(channel.ChannelId, out _));
    }

    [Fact]
    public async Task A_socket_from_socket_activation_is_served()
    {
        using var directory = new TempDirectory();
        string path = directory.File("activated.fds");
        using var inbox = new FdTransferTable();
        using var systemd = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        systemd.Bind(new UnixDomainSocketEndPoint(path));
        systemd.Listen();
        Socket inherited = TestInterop.AsInheritedSocket(systemd);

        await using (FdChannelListener listener = FdChannelListener.FromListeningSocket(inherited, PeerCredentialPolicy.RootAndCurrentUser(), inbox, null))
        {
            await using FdChannel channel = await FdChannel.ConnectAsync(path, new FdTransferTable(), null, Soon.Token);
            Assert.True(listener.TryGetChannel(channel.ChannelId, out _));
        }

        // Bound by someone else (systemd): left in place.
        Assert.True(File.Exists(path));
    }

    [Fact]
    public void A_stream_socket_is_not_a_sideband()
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var inbox = new FdTransferTable();
        Assert.Throws<ArgumentException>(
            () => FdChannelListener.FromListeningSocket(socket, PeerCredentialPolicy.RootAndCurrentUser(), inbox, null));
    }

    [Fact]
    public async Task A_refused_peer_sees_the_connection_closed_without_hello()
    {
        // Allow only a uid that is not ours: this process itself is then refused.
        uint other = TestInterop.geteuid() == 4242 ? 4243u : 4242u;
        await using Sideband sideband = await Sideband.StartAsync(policy: new PeerCredentialPolicy([other]), connect: false);

        IOException failure = await Assert.ThrowsAsync<IOException>(
            () => FdChannel.ConnectAsync(sideband.SocketPath, sideband.HostInbox, null, Soon.Token));
        Assert.Contains("closed before HELLO", failure.Message, StringComparison.Ordinal);
        Assert.Equal(1, sideband.Listener.RefusedConnections);
    }

    [RootFact]
    public async Task A_client_running_as_another_uid_is_refused_and_root_is_greeted()
    {
        await using Sideband sideband = await Sideband.StartAsync(connect: false);
        Assert.Equal(_mode0660, File.GetUnixFileMode(sideband.SocketPath));

        // uid 65534 with gid 0 reaches the 0660 root:root socket through the group bit; only the
        // uid policy can keep it out.
        using (PythonClient nobody = PythonClient.Start(sideband.Directory, 65534, "hello", sideband.SocketPath))
        {
            Assert.Equal("EOF", await nobody.ReadLineAsync());
            Assert.Equal(0, (await nobody.WaitForExitAsync()).ExitCode);
        }

        Assert.Equal(1, sideband.Listener.RefusedConnections);

        using (PythonClient root = PythonClient.Start(sideband.Directory, 0, "hello", sideband.SocketPath))
        {
            string? line = await root.ReadLineAsync();
            Assert.NotNull(line);
            Assert.Matches("^HELLO [0-9a-f]{32}$", line);
            Assert.Equal(0, (await root.WaitForExitAsync()).ExitCode);
        }

        Assert.Equal(1, sideband.Listener.RefusedConnections);
    }

    [RootFact]
    public async Task A_widened_policy_lets_the_other_uid_in()
    {
        await using Sideband sideband = await Sideband.StartAsync(policy: PeerCredentialPolicy.Parse("0,65534"), connect: false);

        using PythonClient nobody = PythonClient.Start(sideband.Directory, 65534, "hello", sideband.SocketPath);
        Assert.Matches("^HELLO [0-9a-f]{32}$", await nobody.ReadLineAsync());
        Assert.Equal(0, sideband.Listener.RefusedConnections);
    }

    [RootFact]
    public async Task A_python_peer_written_from_the_readme_passes_fds_both_ways()
    {
        await using Sideband sideband = await Sideband.StartAsync(connect: false);

        // Python → provider.
        string file = sideband.Directory.CreateFile("from-python", "sent by python");
        using (PythonClient sender = PythonClient.Start(sideband.Directory, null, "send-file", sideband.SocketPath, file))
        {
            string[] sent = (await sender.ReadLineAsync())!.Split(' ');
            Assert.Equal("SENT", sent[0]);
            FdToken token = FdToken.FromBytes(Convert.FromHexString(sent[2]));
            using PassedFd passed = await sideband.ProviderInbox.ClaimAsync(token, 0, FdKind.File, Soon.Wait, Soon.Token);
            using var handle = passed.TakeFileHandle();
            var buffer = new byte[64];
            int read = RandomAccess.Read(handle, buffer, 0);
            Assert.Equal("sent by python", System.Text.Encoding.UTF8.GetString(buffer, 0, read));
        }

        // Provider → python, on the channel python names by the id from its HELLO.
        using PythonClient receiver = PythonClient.Start(sideband.Directory, null, "recv-file", sideband.SocketPath);
        string[] hello = (await receiver.ReadLineAsync())!.Split(' ');
        FdToken channelId = FdToken.FromBytes(Convert.FromHexString(hello[1]));
        Assert.True(sideband.Listener.TryGetChannel(channelId, out FdChannel? channel));
        using PassableFd restore = PassableFd.File(sideband.Directory, "to-python");
        FdToken sentToken = await channel.SendAsync([restore.ToSend], Soon.Token);

        Assert.Equal($"GOT {sentToken} 01 content of to-python", await receiver.ReadLineAsync());
        (int exitCode, string errors) = await receiver.WaitForExitAsync();
        Assert.True(exitCode == 0, errors);
    }
}
