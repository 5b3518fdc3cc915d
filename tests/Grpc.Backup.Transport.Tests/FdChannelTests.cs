using System.Net.Sockets;
using Grpc.Backup.Transport.Tests.Support;

namespace Grpc.Backup.Transport.Tests;

/// <summary>The connecting side: HELLO handling, peer identity, the end of a connection.</summary>
public sealed class FdChannelTests
{
    [Fact]
    public async Task Connect_fails_clearly_when_the_connection_closes_before_hello()
    {
        using var directory = new TempDirectory();
        using Socket listener = FakeListener(directory, out string path);
        Task serve = Task.Run(() => listener.Accept().Dispose());

        IOException failure = await Assert.ThrowsAsync<IOException>(
            () => FdChannel.ConnectAsync(path, new FdTransferTable(), null, Soon.Token));
        Assert.Contains("closed before HELLO", failure.Message, StringComparison.Ordinal);
        Assert.Contains(path, failure.Message, StringComparison.Ordinal);
        await serve;
    }

    [Fact]
    public async Task Connect_fails_clearly_when_the_first_packet_is_not_a_hello()
    {
        using var directory = new TempDirectory();
        using Socket listener = FakeListener(directory, out string path);
        string file = directory.CreateFile("f", "x");
        using var inbox = new FdTransferTable();
        Task serve = Task.Run(async () =>
        {
            using Socket accepted = await listener.AcceptAsync();
            using var handle = File.OpenHandle(file);
            int errno = Internal.SeqpacketIo.TrySend(
                (int)accepted.Handle, RawPacket.Transfer(FdToken.NewRandom(), FdKind.File), [(int)handle.DangerousGetHandle()]);
            Assert.Equal(0, errno);
            await accepted.ReceiveAsync(new byte[1]); // until the client closes
        });

        IOException failure = await Assert.ThrowsAsync<IOException>(() => FdChannel.ConnectAsync(path, inbox, null, Soon.Token));
        Assert.Contains("not a HELLO", failure.Message, StringComparison.Ordinal);
        await serve;
        Assert.Empty(await ProcFds.WaitUntilNoneInto(directory.Path));
        Assert.Equal(0, inbox.OpenFdCount);
    }

    [Fact]
    public async Task Connect_can_be_cancelled_while_waiting_for_hello()
    {
        using var directory = new TempDirectory();
        using Socket listener = FakeListener(directory, out string path);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => FdChannel.ConnectAsync(path, new FdTransferTable(), null, cancel.Token));
    }

    [Fact]
    public async Task Connect_takes_the_channel_id_from_hello_and_knows_its_peer()
    {
        await using Sideband sideband = await Sideband.StartAsync();

        Assert.Equal(sideband.Host.ChannelId, sideband.Provider.ChannelId);
        Assert.Equal(Environment.ProcessId, sideband.Host.Peer.ProcessId);
        Assert.Equal(TestInterop.geteuid(), sideband.Host.Peer.UserId);
        Assert.Equal(Environment.ProcessId, sideband.Provider.Peer.ProcessId);
    }

    [Fact]
    public async Task Each_connection_gets_its_own_channel_id()
    {
        await using Sideband sideband = await Sideband.StartAsync();
        await using FdChannel second = await FdChannel.ConnectAsync(sideband.SocketPath, sideband.HostInbox, null, Soon.Token);

        Assert.NotEqual(sideband.Host.ChannelId, second.ChannelId);
        Assert.True(sideband.Listener.TryGetChannel(second.ChannelId, out _));
    }

    [Fact]
    public async Task When_the_host_goes_the_provider_channel_completes_and_is_forgotten()
    {
        await using Sideband sideband = await Sideband.StartAsync();
        FdChannel provider = sideband.Provider;
        FdToken id = sideband.Host.ChannelId;

        await sideband.Host.DisposeAsync();

        await provider.Completion.WaitAsync(Soon.Wait);
        Assert.True(await Eventually.True(() => !sideband.Listener.TryGetChannel(id, out _)));
        using PassableFd file = PassableFd.File(sideband.Directory, "f");
        await Assert.ThrowsAnyAsync<Exception>(() => provider.SendAsync([file.ToSend], Soon.Token));
    }

    [Fact]
    public async Task When_the_provider_goes_the_host_channel_completes_and_cannot_send()
    {
        await using Sideband sideband = await Sideband.StartAsync();

        await sideband.Listener.DisposeAsync();

        await sideband.Host.Completion.WaitAsync(Soon.Wait);
        using PassableFd file = PassableFd.File(sideband.Directory, "f");
        await Assert.ThrowsAsync<IOException>(() => sideband.Host.SendAsync([file.ToSend], Soon.Token));
    }

    [Fact]
    public async Task A_disposed_channel_refuses_to_send()
    {
        await using Sideband sideband = await Sideband.StartAsync();
        await sideband.Host.DisposeAsync();
        await sideband.Host.DisposeAsync();

        using PassableFd file = PassableFd.File(sideband.Directory, "f");
        await Assert.ThrowsAsync<ObjectDisposedException>(() => sideband.Host.SendAsync([file.ToSend], Soon.Token));
    }

    [Fact]
    public void Peer_credentials_of_a_socket_pair_are_this_process()
    {
        (Socket near, Socket far) = TestInterop.StreamSocketPair();
        using (near)
        using (far)
        {
            UnixPeerCredentials peer = UnixPeerCredentials.FromSocket(near);
            Assert.Equal(Environment.ProcessId, peer.ProcessId);
            Assert.Equal(TestInterop.geteuid(), peer.UserId);
        }
    }

    private static Socket FakeListener(TempDirectory directory, out string path)
    {
        path = directory.File("fake.fds");
        var listener = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen();
        return listener;
    }
}
