using Grpc.Backup.Transport.Tests.Support;

namespace Grpc.Backup.Transport.Tests;

/// <summary>Fds of every kind cross the sideband in both directions and work on the other side.</summary>
public sealed class FdPassingTests
{
    public enum Direction
    {
        HostToProvider,
        ProviderToHost,
    }

    public static TheoryData<Direction, FdKind> Cases => new()
    {
        { Direction.HostToProvider, FdKind.File },
        { Direction.HostToProvider, FdKind.Pipe },
        { Direction.HostToProvider, FdKind.NbdSocket },
        { Direction.ProviderToHost, FdKind.File },
        { Direction.ProviderToHost, FdKind.Pipe },
        { Direction.ProviderToHost, FdKind.NbdSocket },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_passed_fd_is_usable_by_the_receiver(Direction direction, FdKind kind)
    {
        await using Sideband sideband = await Sideband.StartAsync();
        (FdChannel sender, FdTransferTable receiver) = sideband.Direction(direction == Direction.HostToProvider);
        using PassableFd fd = PassableFd.Create(kind, sideband.Directory, "passed");

        FdToken token = await sender.SendAsync([fd.ToSend], Soon.Token);
        using PassedFd passed = await receiver.ClaimAsync(token, 0, kind, Soon.Wait, Soon.Token);

        Assert.Equal(kind, passed.Kind);
        Assert.Equal(token, passed.Token);
        await fd.VerifyAsync(passed);
        Assert.Equal(0, receiver.OpenFdCount);
    }

    [Theory]
    [InlineData(Direction.HostToProvider)]
    [InlineData(Direction.ProviderToHost)]
    public async Task A_mixed_transfer_keeps_the_order_of_its_fds(Direction direction)
    {
        await using Sideband sideband = await Sideband.StartAsync();
        (FdChannel sender, FdTransferTable receiver) = sideband.Direction(direction == Direction.HostToProvider);
        using PassableFd socket = PassableFd.Socket("s");
        using PassableFd file = PassableFd.File(sideband.Directory, "f");
        using PassableFd pipe = PassableFd.Pipe("p");

        FdToken token = await sender.SendAsync([socket.ToSend, file.ToSend, pipe.ToSend], Soon.Token);
        Assert.Equal(3, await CountWhenArrived(receiver, 3));

        using PassedFd passedPipe = await receiver.ClaimAsync(token, 2, FdKind.Pipe, Soon.Wait, Soon.Token);
        using PassedFd passedSocket = await receiver.ClaimAsync(token, 0, FdKind.NbdSocket, Soon.Wait, Soon.Token);
        using PassedFd passedFile = await receiver.ClaimAsync(token, 1, FdKind.File, Soon.Wait, Soon.Token);
        await pipe.VerifyAsync(passedPipe);
        await socket.VerifyAsync(passedSocket);
        await file.VerifyAsync(passedFile);
    }

    [Fact]
    public async Task Sixty_four_fds_travel_in_one_transfer()
    {
        await using Sideband sideband = await Sideband.StartAsync();
        var files = Enumerable.Range(0, 64).Select(i => PassableFd.File(sideband.Directory, $"file-{i}")).ToList();
        try
        {
            FdToken token = await sideband.Host.SendAsync([.. files.Select(f => f.ToSend)], Soon.Token);
            Assert.Equal(64, await CountWhenArrived(sideband.ProviderInbox, 64));
            for (int i = 0; i < 64; i++)
            {
                using PassedFd passed = await sideband.ProviderInbox.ClaimAsync(token, i, FdKind.File, Soon.Wait, Soon.Token);
                await files[i].VerifyAsync(passed);
            }
        }
        finally
        {
            files.ForEach(f => f.Dispose());
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(65)]
    public async Task The_sender_refuses_zero_or_more_than_sixty_four_fds(int count)
    {
        await using Sideband sideband = await Sideband.StartAsync();
        string path = sideband.Directory.CreateFile("f", "x");
        var handles = Enumerable.Range(0, count).Select(_ => File.OpenHandle(path)).ToList();
        try
        {
            await Assert.ThrowsAsync<ArgumentException>(
                () => sideband.Host.SendAsync([.. handles.Select(h => new FdToSend(h, FdKind.File))], Soon.Token));
        }
        finally
        {
            handles.ForEach(h => h.Dispose());
        }

        await Task.Delay(100);
        Assert.Equal(0, sideband.ProviderInbox.OpenFdCount);
    }

    [Fact]
    public async Task The_sender_refuses_closed_handles_and_unknown_kinds()
    {
        await using Sideband sideband = await Sideband.StartAsync();
        string path = sideband.Directory.CreateFile("f", "x");
        using var open = File.OpenHandle(path);
        var closed = File.OpenHandle(path);
        closed.Dispose();

        await Assert.ThrowsAsync<ArgumentException>(() => sideband.Host.SendAsync([new FdToSend(closed, FdKind.File)], Soon.Token));
        await Assert.ThrowsAsync<ArgumentException>(() => sideband.Host.SendAsync([new FdToSend(open, (FdKind)0)], Soon.Token));
        await Assert.ThrowsAsync<ArgumentException>(() => sideband.Host.SendAsync([new FdToSend(open, (FdKind)5)], Soon.Token));
    }

    [Fact]
    public async Task Concurrent_sends_each_arrive_whole()
    {
        await using Sideband sideband = await Sideband.StartAsync();
        var files = Enumerable.Range(0, 16).Select(i => PassableFd.File(sideband.Directory, $"file-{i}")).ToList();
        try
        {
            FdToken[] tokens = await Task.WhenAll(files.Select(
                f => Task.Run(() => sideband.Host.SendAsync([f.ToSend, f.ToSend], Soon.Token))));
            Assert.Equal(16, tokens.Distinct().Count());
            for (int i = 0; i < files.Count; i++)
            {
                using PassedFd first = await sideband.ProviderInbox.ClaimAsync(tokens[i], 0, FdKind.File, Soon.Wait, Soon.Token);
                using PassedFd second = await sideband.ProviderInbox.ClaimAsync(tokens[i], 1, FdKind.File, Soon.Wait, Soon.Token);
                await files[i].VerifyAsync(first);
                await files[i].VerifyAsync(second);
            }
        }
        finally
        {
            files.ForEach(f => f.Dispose());
        }
    }

    [BlockDeviceFact]
    public async Task A_block_device_passes_the_kind_check()
    {
        const string Device = BlockDeviceFactAttribute.Device;
        await using Sideband sideband = await Sideband.StartAsync();
        using var device = File.OpenHandle(Device, FileMode.Open, FileAccess.Read);
        FdToken token = await sideband.Host.SendAsync(
            [new FdToSend(device, FdKind.BlockDevice), new FdToSend(device, FdKind.File)], Soon.Token);

        using PassedFd passed = await sideband.ProviderInbox.ClaimAsync(token, 0, FdKind.BlockDevice, Soon.Wait, Soon.Token);
        Assert.True(passed.DangerousFdNumber >= 0);
        FdClaimException mismatch = await Assert.ThrowsAsync<FdClaimException>(
            async () => await sideband.ProviderInbox.ClaimAsync(token, 1, FdKind.File, Soon.Wait, Soon.Token));
        Assert.Equal(FdClaimFailure.KindMismatch, mismatch.Failure);
        Assert.Contains("block device", mismatch.Message, StringComparison.Ordinal);
    }

    private static async Task<int> CountWhenArrived(FdTransferTable table, int expected)
    {
        await Eventually.True(() => table.OpenFdCount >= expected);
        return table.OpenFdCount;
    }
}
