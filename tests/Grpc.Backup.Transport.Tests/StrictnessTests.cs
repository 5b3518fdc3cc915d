using Grpc.Backup.Transport.Tests.Support;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Transport.Tests;

/// <summary>
/// The receiving rules of protos/README.md ("Receiving, strictly"), driven by a raw sender that
/// bypasses the API. Every fd the receiver got must be closed: the fds point to files in the
/// test's own directory, and /proc/self/fd must show none of them afterwards.
/// </summary>
public sealed class StrictnessTests
{
    public static TheoryData<string> RejectedCases => new()
    {
        "control data truncated",
        "header 3, control data 2",
        "header 2, control data 3",
        "one byte too long",
        "one byte too short",
        "longer than the buffer",
        "count 0",
        "no control data",
        "unknown kind",
    };

    [Theory]
    [MemberData(nameof(RejectedCases))]
    public async Task A_transfer_breaking_a_rule_is_rejected_and_all_its_fds_closed(string rule)
    {
        await using Sideband sideband = await Sideband.StartAsync(connect: false);
        using RawSidebandClient client = RawSidebandClient.Connect(sideband.SocketPath);
        FdToken token = FdToken.NewRandom();
        (byte[] packet, int fdCount, string reason) = rule switch
        {
            // The receiver has room for 64 fds; the kernel delivers 64, closes the rest, sets MSG_CTRUNC.
            "control data truncated" => (RawPacket.Transfer(token, RawPacket.Files(64)), 65, "MSG_CTRUNC"),
            "header 3, control data 2" => (RawPacket.Transfer(token, RawPacket.Files(3)), 2, "header count 3 but the control data carries 2 fds"),
            "header 2, control data 3" => (RawPacket.Transfer(token, RawPacket.Files(2)), 3, "header count 2 but the control data carries 3 fds"),
            "one byte too long" => ([.. RawPacket.Transfer(token, RawPacket.Files(2)), 1], 2, "packet is 27 bytes, expected 24 + count 2 = 26"),
            "one byte too short" => (RawPacket.Transfer(token, RawPacket.Files(2))[..^1], 2, "packet is 25 bytes"),
            "longer than the buffer" => ([.. RawPacket.Transfer(token, RawPacket.Files(2)), .. new byte[100]], 2, "MSG_TRUNC"),
            "count 0" => (RawPacket.Transfer(token), 1, "count 0 is outside 1..64"),
            "no control data" => (RawPacket.Transfer(token, RawPacket.Files(1)), 0, "exactly one SCM_RIGHTS control message, got 0"),
            "unknown kind" => (RawPacket.Build("GBFD"u8, 1, 2, 1, token.ToByteArray(), [9]), 1, "kind byte 9"),
            _ => throw new ArgumentOutOfRangeException(nameof(rule)),
        };

        SendWithFdsToFiles(sideband.Directory, client, packet, fdCount);

        FdClaimException failure = await Assert.ThrowsAsync<FdClaimException>(
            async () => await sideband.ProviderInbox.ClaimAsync(token, 0, FdKind.File, Soon.Wait, Soon.Token));
        Assert.Equal(FdClaimFailure.Rejected, failure.Failure);
        Assert.Contains(reason, failure.RejectionReason, StringComparison.Ordinal);
        Assert.Empty(await ProcFds.WaitUntilNoneInto(sideband.Directory.Path));
        Assert.Equal(0, sideband.ProviderInbox.OpenFdCount);

        // A rejected transfer does not end the connection: the next good one arrives.
        await AssertConnectionStillCarriesTransfers(sideband, client);
    }

    public static TheoryData<string> ProtocolErrorCases => new()
    {
        "bad magic",
        "unknown version",
        "unknown type",
        "HELLO from the connecting side",
    };

    [Theory]
    [MemberData(nameof(ProtocolErrorCases))]
    public async Task A_packet_of_another_protocol_closes_its_fds_and_the_connection(string error)
    {
        await using Sideband sideband = await Sideband.StartAsync(connect: false);
        using RawSidebandClient client = RawSidebandClient.Connect(sideband.SocketPath);
        FdToken token = FdToken.NewRandom();
        byte[] packet = error switch
        {
            "bad magic" => RawPacket.Build("GBFX"u8, 1, 2, 2, token.ToByteArray(), [1, 1]),
            "unknown version" => RawPacket.Build("GBFD"u8, 2, 2, 2, token.ToByteArray(), [1, 1]),
            "unknown type" => RawPacket.Build("GBFD"u8, 1, 3, 2, token.ToByteArray(), [1, 1]),
            "HELLO from the connecting side" => RawPacket.Build("GBFD"u8, 1, 1, 0, token.ToByteArray(), []),
            _ => throw new ArgumentOutOfRangeException(nameof(error)),
        };
        Assert.True(sideband.Listener.TryGetChannel(client.ChannelId, out _));

        SendWithFdsToFiles(sideband.Directory, client, packet, 2);

        Assert.True(client.ReceivesEndOfStream(), "the receiver did not close the connection");
        Assert.Empty(await ProcFds.WaitUntilNoneInto(sideband.Directory.Path));
        Assert.True(await Eventually.True(() => !sideband.Listener.TryGetChannel(client.ChannelId, out _)));

        // Not a transfer, so nothing is remembered under its token.
        FdClaimException failure = await Assert.ThrowsAsync<FdClaimException>(
            async () => await sideband.ProviderInbox.ClaimAsync(token, 0, FdKind.File, TimeSpan.FromMilliseconds(50), Soon.Token));
        Assert.Equal(FdClaimFailure.UnknownTransfer, failure.Failure);
    }

    [Fact]
    public async Task A_reused_token_is_rejected_without_disturbing_the_first_transfer()
    {
        await using Sideband sideband = await Sideband.StartAsync(connect: false);
        using RawSidebandClient client = RawSidebandClient.Connect(sideband.SocketPath);
        FdToken token = FdToken.NewRandom();
        string first = sideband.Directory.CreateFile("first", "first transfer");
        using (SafeFileHandle handle = File.OpenHandle(first))
        {
            client.Send(RawPacket.Transfer(token, FdKind.File), handle);
        }

        using var reused = new TempDirectory();
        SendWithFdsToFiles(reused, client, RawPacket.Transfer(token, FdKind.File, FdKind.File), 2);
        SendWithFdsToFiles(reused, client, RawPacket.Transfer(token, FdKind.File, FdKind.File), 1);

        Assert.Empty(await ProcFds.WaitUntilNoneInto(reused.Path));
        await AssertConnectionStillCarriesTransfers(sideband, client);
        using PassedFd passed = await sideband.ProviderInbox.ClaimAsync(token, 0, FdKind.File, Soon.Wait, Soon.Token);
        var buffer = new byte[64];
        using SafeFileHandle received = passed.TakeFileHandle();
        int read = RandomAccess.Read(received, buffer, 0);
        Assert.Equal("first transfer", System.Text.Encoding.UTF8.GetString(buffer, 0, read));

        // After the claim the token is still known: reusing it again is rejected as well.
        SendWithFdsToFiles(reused, client, RawPacket.Transfer(token, FdKind.File), 1);
        Assert.Empty(await ProcFds.WaitUntilNoneInto(reused.Path));
        FdClaimException again = await Assert.ThrowsAsync<FdClaimException>(
            async () => await sideband.ProviderInbox.ClaimAsync(token, 0, FdKind.File, Soon.Wait, Soon.Token));
        Assert.Equal(FdClaimFailure.AlreadyClaimed, again.Failure);
    }

    [Fact]
    public async Task The_listener_greets_with_a_well_formed_hello()
    {
        await using Sideband sideband = await Sideband.StartAsync(connect: false);
        using RawSidebandClient client = RawSidebandClient.Connect(sideband.SocketPath);

        Assert.Equal(24, client.Hello.Length);
        Assert.Equal("GBFD"u8.ToArray(), client.Hello[..4]);
        Assert.Equal(new byte[] { 1, 1, 0, 0 }, client.Hello[4..8]);
        Assert.True(sideband.Listener.TryGetChannel(client.ChannelId, out FdChannel? channel));
        Assert.Equal(client.ChannelId, channel.ChannelId);
    }

    private static void SendWithFdsToFiles(TempDirectory directory, RawSidebandClient client, byte[] packet, int fdCount)
    {
        string path = directory.CreateFile($"victim-{Guid.NewGuid():N}", "must be closed");
        var handles = Enumerable.Range(0, fdCount).Select(_ => File.OpenHandle(path)).ToArray();
        try
        {
            client.Send(packet, handles);
        }
        finally
        {
            // The sender's copies; what remains open after this is the receiver's.
            foreach (SafeFileHandle handle in handles)
            {
                handle.Dispose();
            }
        }
    }

    private static async Task AssertConnectionStillCarriesTransfers(Sideband sideband, RawSidebandClient client)
    {
        FdToken next = FdToken.NewRandom();
        string path = sideband.Directory.CreateFile($"good-{next}", "good");
        using (SafeFileHandle handle = File.OpenHandle(path))
        {
            client.Send(RawPacket.Transfer(next, FdKind.File), handle);
        }

        using PassedFd passed = await sideband.ProviderInbox.ClaimAsync(next, 0, FdKind.File, Soon.Wait, Soon.Token);
        Assert.Equal(FdKind.File, passed.Kind);
    }
}
