using Grpc.Backup.Transport.Tests.Support;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Transport.Tests;

/// <summary>Claiming, TTL, token memory: the table on its own, fed as a channel feeds it.</summary>
public sealed class FdTransferTableTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Unclaimed_fds_are_closed_at_the_ttl_and_the_token_answers_expired()
    {
        // The table's own clock: a loaded machine must not expire the fds before they are counted.
        var time = new ManualTimeProvider();
        using var table = new FdTransferTable(TimeSpan.FromMilliseconds(200), time);
        FdToken token = FdToken.NewRandom();
        Assert.True(table.Add(token, [OpenFile("a"), OpenFile("b")], [FdKind.File, FdKind.File]));
        Assert.Equal(2, table.OpenFdCount);
        Assert.Equal(2, ProcFds.PointingInto(_directory.Path).Count);

        time.Advance(TimeSpan.FromMilliseconds(200));
        Assert.True(await Eventually.True(() => table.OpenFdCount == 0));
        Assert.Empty(await ProcFds.WaitUntilNoneInto(_directory.Path));
        await AssertClaimFails(table, token, 0, FdClaimFailure.Expired);
        await AssertClaimFails(table, token, 1, FdClaimFailure.Expired);
    }

    [Fact]
    public async Task The_ttl_runs_on_the_given_time_provider()
    {
        var time = new ManualTimeProvider();
        using var table = new FdTransferTable(timeProvider: time);
        FdToken token = FdToken.NewRandom();
        FdToken partly = FdToken.NewRandom();
        table.Add(token, [OpenFile("a")], [FdKind.File]);
        table.Add(partly, [OpenFile("b"), OpenFile("c")], [FdKind.File, FdKind.File]);
        using PassedFd claimed = await table.ClaimAsync(partly, 0, FdKind.File, TimeSpan.Zero, Soon.Token);

        time.Advance(TimeSpan.FromSeconds(29.9));
        Assert.Equal(2, table.OpenFdCount);

        time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal(0, table.OpenFdCount);
        await AssertClaimFails(table, token, 0, FdClaimFailure.Expired);
        await AssertClaimFails(table, partly, 1, FdClaimFailure.Expired);

        // The fd claimed before expiry belongs to its claimer and stays open.
        Assert.Equal(_directory.File("b"), Assert.Single(ProcFds.PointingInto(_directory.Path)));
    }

    [Fact]
    public async Task Each_fd_can_be_claimed_once()
    {
        using var table = new FdTransferTable();
        FdToken token = FdToken.NewRandom();
        table.Add(token, [OpenFile("a"), OpenFile("b")], [FdKind.File, FdKind.File]);

        using (PassedFd first = await table.ClaimAsync(token, 0, FdKind.File, TimeSpan.Zero, Soon.Token))
        {
            Assert.Equal(0, first.Index);
        }

        await AssertClaimFails(table, token, 0, FdClaimFailure.AlreadyClaimed);
        await AssertClaimFails(table, token, 2, FdClaimFailure.IndexOutOfRange);
        await AssertClaimFails(table, token, -1, FdClaimFailure.IndexOutOfRange);
        using (await table.ClaimAsync(token, 1, FdKind.File, TimeSpan.Zero, Soon.Token))
        {
        }

        // Fully claimed: still known, so a late claim is told precisely.
        await AssertClaimFails(table, token, 1, FdClaimFailure.AlreadyClaimed);
        await AssertClaimFails(table, token, 2, FdClaimFailure.IndexOutOfRange);
        Assert.Empty(ProcFds.PointingInto(_directory.Path));
    }

    [Fact]
    public async Task A_file_declared_as_a_pipe_is_a_kind_mismatch_and_is_closed()
    {
        await using Sideband sideband = await Sideband.StartAsync();
        string path = sideband.Directory.CreateFile("not-a-pipe", "x");
        FdToken token;
        using (SafeFileHandle file = File.OpenHandle(path))
        {
            token = await sideband.Host.SendAsync([new FdToSend(file, FdKind.Pipe)], Soon.Token);
        }

        FdClaimException failure = await AssertClaimFails(sideband.ProviderInbox, token, 0, FdClaimFailure.KindMismatch, FdKind.Pipe, Soon.Wait);
        Assert.Contains("declared Pipe but it is a regular file", failure.Message, StringComparison.Ordinal);
        Assert.Empty(ProcFds.PointingInto(sideband.Directory.Path));
        await AssertClaimFails(sideband.ProviderInbox, token, 0, FdClaimFailure.AlreadyClaimed, FdKind.Pipe);
    }

    [Fact]
    public async Task A_claim_expecting_another_kind_than_declared_is_a_kind_mismatch()
    {
        using var table = new FdTransferTable();
        FdToken token = FdToken.NewRandom();
        table.Add(token, [OpenFile("a")], [FdKind.File]);

        FdClaimException failure = await AssertClaimFails(table, token, 0, FdClaimFailure.KindMismatch, FdKind.NbdSocket);
        Assert.Contains("declared File, expected NbdSocket", failure.Message, StringComparison.Ordinal);
        Assert.Empty(ProcFds.PointingInto(_directory.Path));
    }

    [Fact]
    public async Task A_file_is_not_a_socket()
    {
        using var table = new FdTransferTable();
        FdToken token = FdToken.NewRandom();
        table.Add(token, [OpenFile("a")], [FdKind.NbdSocket]);

        FdClaimException failure = await AssertClaimFails(table, token, 0, FdClaimFailure.KindMismatch, FdKind.NbdSocket);
        Assert.Contains("declared NbdSocket but it is a regular file", failure.Message, StringComparison.Ordinal);
        Assert.Empty(ProcFds.PointingInto(_directory.Path));
    }

    [Fact]
    public async Task A_claim_waits_for_a_transfer_that_arrives_later()
    {
        await using Sideband sideband = await Sideband.StartAsync();
        using PassableFd file = PassableFd.File(sideband.Directory, "late");

        // The token is only known once sent, so wait on the table for a token chosen by a raw send.
        using RawSidebandClient client = RawSidebandClient.Connect(sideband.SocketPath);
        FdToken token = FdToken.NewRandom();
        ValueTask<PassedFd> claim = sideband.ProviderInbox.ClaimAsync(token, 0, FdKind.File, Soon.Wait, Soon.Token);
        await Task.Delay(300);
        Assert.False(claim.IsCompleted);

        client.Send(RawPacket.Transfer(token, FdKind.File), file.ToSend.Handle);
        using PassedFd passed = await claim;
        await file.VerifyAsync(passed);
    }

    [Fact]
    public async Task Several_claims_can_wait_for_the_same_transfer()
    {
        using var table = new FdTransferTable();
        FdToken token = FdToken.NewRandom();
        ValueTask<PassedFd> first = table.ClaimAsync(token, 0, FdKind.File, Soon.Wait, Soon.Token);
        ValueTask<PassedFd> second = table.ClaimAsync(token, 1, FdKind.File, Soon.Wait, Soon.Token);
        table.Add(token, [OpenFile("a"), OpenFile("b")], [FdKind.File, FdKind.File]);

        using PassedFd a = await first;
        using PassedFd b = await second;
        Assert.Equal(1, b.Index);
    }

    [Fact]
    public async Task A_transfer_that_never_arrives_is_unknown_after_the_wait()
    {
        var time = new ManualTimeProvider();
        using var table = new FdTransferTable(timeProvider: time);
        FdToken token = FdToken.NewRandom();
        ValueTask<PassedFd> claim = table.ClaimAsync(token, 0, FdKind.File, TimeSpan.FromSeconds(5), Soon.Token);
        time.Advance(TimeSpan.FromSeconds(4));
        await Task.Delay(50);
        Assert.False(claim.IsCompleted);

        time.Advance(TimeSpan.FromSeconds(1));
        FdClaimException failure = await Assert.ThrowsAsync<FdClaimException>(async () => await claim);
        Assert.Equal(FdClaimFailure.UnknownTransfer, failure.Failure);

        // A zero wait does not wait at all.
        await AssertClaimFails(table, FdToken.NewRandom(), 0, FdClaimFailure.UnknownTransfer);
    }

    [Fact]
    public async Task A_waiting_claim_can_be_cancelled()
    {
        using var table = new FdTransferTable();
        using var cancel = new CancellationTokenSource();
        ValueTask<PassedFd> claim = table.ClaimAsync(FdToken.NewRandom(), 0, FdKind.File, Soon.Wait, cancel.Token);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await claim);
    }

    [Fact]
    public async Task A_rejected_token_answers_rejected_and_a_later_rejection_does_not_disturb_a_transfer()
    {
        using var table = new FdTransferTable();
        FdToken rejected = FdToken.NewRandom();
        FdToken good = FdToken.NewRandom();
        table.Reject(rejected, "count mismatch");
        table.Add(good, [OpenFile("a")], [FdKind.File]);
        table.Reject(good, "a bad packet reusing a good token");

        FdClaimException failure = await AssertClaimFails(table, rejected, 0, FdClaimFailure.Rejected);
        Assert.Equal("count mismatch", failure.RejectionReason);
        Assert.False(table.Add(rejected, [OpenFile("b")], [FdKind.File]));
        await AssertClaimFails(table, rejected, 0, FdClaimFailure.Rejected);
        using PassedFd passed = await table.ClaimAsync(good, 0, FdKind.File, TimeSpan.Zero, Soon.Token);
        Assert.Equal(_directory.File("a"), Assert.Single(ProcFds.PointingInto(_directory.Path)));
    }

    [Fact]
    public async Task Dispose_closes_every_fd_held_and_fails_waiting_claims()
    {
        var table = new FdTransferTable();
        table.Add(FdToken.NewRandom(), [OpenFile("a"), OpenFile("b")], [FdKind.File, FdKind.File]);
        ValueTask<PassedFd> waiting = table.ClaimAsync(FdToken.NewRandom(), 0, FdKind.File, Soon.Wait, Soon.Token);

        table.Dispose();

        Assert.Empty(ProcFds.PointingInto(_directory.Path));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await waiting);
        Assert.False(table.Add(FdToken.NewRandom(), [OpenFile("c")], [FdKind.File]));
        Assert.Empty(ProcFds.PointingInto(_directory.Path));
    }

    [Fact]
    public async Task Tokens_of_finished_transfers_are_forgotten_only_after_a_day()
    {
        var time = new ManualTimeProvider();
        using var table = new FdTransferTable(timeProvider: time);
        FdToken token = FdToken.NewRandom();
        table.Add(token, [OpenFile("a")], [FdKind.File]);
        using (await table.ClaimAsync(token, 0, FdKind.File, TimeSpan.Zero, Soon.Token))
        {
        }

        time.Advance(TimeSpan.FromHours(23));
        table.Reject(FdToken.NewRandom(), "prune trigger");
        Assert.False(table.Add(token, [OpenFile("b")], [FdKind.File]));

        time.Advance(TimeSpan.FromHours(2));
        table.Reject(FdToken.NewRandom(), "prune trigger");
        await AssertClaimFails(table, token, 0, FdClaimFailure.UnknownTransfer);
    }

    [Fact]
    public async Task A_passed_fd_is_closed_by_dispose_unless_taken()
    {
        using var table = new FdTransferTable();
        FdToken token = FdToken.NewRandom();
        table.Add(token, [OpenFile("a"), OpenFile("b")], [FdKind.File, FdKind.File]);

        PassedFd disposed = await table.ClaimAsync(token, 0, FdKind.File, TimeSpan.Zero, Soon.Token);
        disposed.Dispose();
        Assert.Throws<ObjectDisposedException>(() => disposed.DangerousFdNumber);
        Assert.Equal(_directory.File("b"), Assert.Single(ProcFds.PointingInto(_directory.Path)));

        using PassedFd taken = await table.ClaimAsync(token, 1, FdKind.File, TimeSpan.Zero, Soon.Token);
        Assert.Throws<InvalidOperationException>(() => taken.TakeSocket());
        using SafeFileHandle handle = taken.TakeFileHandle();
        taken.Dispose();
        Assert.Throws<ObjectDisposedException>(() => taken.TakeFileHandle());
        Assert.Equal(_directory.File("b"), Assert.Single(ProcFds.PointingInto(_directory.Path)));
    }

    [Fact]
    public async Task A_peer_that_never_claims_cannot_make_the_table_hold_more_than_its_fd_limit()
    {
        using var table = new FdTransferTable();
        // The same fd 64 times per transfer, transfer after transfer, never claimed.
        var accepted = new List<FdToken>();
        FdToken refused = default;
        for (int i = 0; i < FdTransferTable.MaxOpenFds / 64 + 1; i++)
        {
            FdToken token = FdToken.NewRandom();
            var copies = Enumerable.Range(0, 64).Select(_ => OpenFile("same")).ToArray();
            if (table.Add(token, copies, [.. Enumerable.Repeat(FdKind.File, 64)]))
            {
                accepted.Add(token);
            }
            else
            {
                refused = token;
                Assert.All(copies, c => Assert.True(c.IsClosed, "a refused transfer's fds are closed at once"));
            }
        }

        Assert.Equal(FdTransferTable.MaxOpenFds / 64, accepted.Count);
        Assert.Equal(FdTransferTable.MaxOpenFds, table.OpenFdCount);
        FdClaimException failure = await AssertClaimFails(table, refused, 0, FdClaimFailure.Rejected);
        Assert.Contains("unclaimed fds", failure.Message, StringComparison.Ordinal);

        // Claiming frees room again.
        using (PassedFd claimed = await table.ClaimAsync(accepted[0], 0, FdKind.File, TimeSpan.Zero, Soon.Token))
        {
            Assert.Equal(FdTransferTable.MaxOpenFds - 1, table.OpenFdCount);
        }
    }

    [Fact]
    public void A_flood_of_bogus_tokens_keeps_the_table_bounded()
    {
        using var table = new FdTransferTable();
        for (int i = 0; i < FdTransferTable.MaxRecords * 2; i++)
        {
            table.Reject(FdToken.NewRandom(), "truncated control data");
        }

        Assert.InRange(table.RecordCount, 1, FdTransferTable.MaxRecords + 1);
    }

    private SafeFileHandle OpenFile(string name)
    {
        string path = _directory.File(name);
        if (!File.Exists(path))
        {
            File.WriteAllText(path, name);
        }

        return File.OpenHandle(path);
    }

    private static async Task<FdClaimException> AssertClaimFails(
        FdTransferTable table, FdToken token, int index, FdClaimFailure expected, FdKind kind = FdKind.File, TimeSpan? wait = null)
    {
        FdClaimException failure = await Assert.ThrowsAsync<FdClaimException>(
            async () => await table.ClaimAsync(token, index, kind, wait ?? TimeSpan.Zero, Soon.Token));
        Assert.Equal(expected, failure.Failure);
        Assert.Equal(token, failure.Token);
        Assert.Equal(index, failure.Index);
        return failure;
    }
}
