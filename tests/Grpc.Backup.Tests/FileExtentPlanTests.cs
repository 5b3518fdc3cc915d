using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Core;

namespace Grpc.Backup.Tests;

/// <summary>The SDK's one reading of a FILE_HANDLE volume's streamed extents into a copy plan.</summary>
public sealed class FileExtentPlanTests
{
    private const long Size = 16 << 20;
    private const long MiB = 1 << 20;

    [Fact]
    public async Task A_full_backups_gaps_are_zeros_and_touching_ranges_merge()
    {
        List<PlannedExtent> plan = await ReadAsync(incremental: false,
            Message("sda", last: false, (MiB, MiB, false), (2 * MiB, MiB, false)),
            Message("sda", last: true, (4 * MiB, MiB, true), (5 * MiB, MiB, false)));

        Assert.Equal(
        [
            new PlannedExtent(0, MiB, ExtentAction.Zero),
            new PlannedExtent(MiB, 2 * MiB, ExtentAction.Copy),
            new PlannedExtent(3 * MiB, 2 * MiB, ExtentAction.Zero),
            new PlannedExtent(5 * MiB, MiB, ExtentAction.Copy),
            new PlannedExtent(6 * MiB, Size - 6 * MiB, ExtentAction.Zero),
        ], plan);
    }

    [Fact]
    public async Task An_incrementals_gaps_are_skipped_and_the_plan_covers_the_disk()
    {
        List<PlannedExtent> plan = await ReadAsync(incremental: true, Message("sda", last: true, (0, MiB, false), (Size - MiB, MiB, false)));

        Assert.Equal(
        [
            new PlannedExtent(0, MiB, ExtentAction.Copy),
            new PlannedExtent(MiB, Size - 2 * MiB, ExtentAction.Skip),
            new PlannedExtent(Size - MiB, MiB, ExtentAction.Copy),
        ], plan);
        Assert.Equal(Size, plan.Sum(e => e.Length));
    }

    public static TheoryData<string, BackupVmRequest[]> Refused => new()
    {
        { "not ascending", [Message("sda", last: true, (2 * MiB, MiB, false), (0, MiB, false))] },
        { "overlaps", [Message("sda", last: true, (0, 2 * MiB, false), (MiB, MiB, false))] },
        { "outside the", [Message("sda", last: true, (Size - MiB, 2 * MiB, false))] },
        { "outside the", [Message("sda", last: true, (Size + 1, 1, false))] },
        { "is empty", [Message("sda", last: true, (0, 0, false))] },
        { "ended before", [Message("sda", last: false, (0, MiB, false))] },
        { "expected the extents of sda, got Extents sdb", [Message("sdb", last: true, (0, MiB, false))] },
        { "expected the extents of sda, got Start", [new BackupVmRequest { Start = new BackupVmStart() }] },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task Untrusted_extents_are_invalid_arguments(string why, BackupVmRequest[] requests)
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(incremental: false, requests));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains(why, error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task More_extents_than_the_limit_are_refused()
    {
        BackupVmRequest request = Message("sda", last: true, Enumerable.Range(0, 5).Select(i => (i * 2 * MiB, MiB, false)).ToArray());
        Assert.Equal(10, (await FileExtentPlan.ReadAsync(new Requests([request.Clone()]), "sda", Size, false, 5, CancellationToken.None)).Count);
        var error = await Assert.ThrowsAsync<RpcException>(() => FileExtentPlan.ReadAsync(new Requests([request]), "sda", Size, false, 4, CancellationToken.None));
        Assert.Contains("more than 4 extents", error.Status.Detail, StringComparison.Ordinal);
    }

    private static Task<List<PlannedExtent>> ReadAsync(bool incremental, params BackupVmRequest[] requests) =>
        FileExtentPlan.ReadAsync(new Requests(requests), new ValidatedVmVolume("sda", Size, incremental ? BitmapMode.Reuse : BitmapMode.New, null,
            new FileVolumeSource()), CancellationToken.None);

    private static BackupVmRequest Message(string device, bool last, params (long Offset, long Length, bool Zero)[] extents)
    {
        var message = new VolumeExtents { DeviceName = device, Last = last };
        message.Extents.AddRange(extents.Select(e => new Extent { Offset = (ulong)e.Offset, Length = (ulong)e.Length, Zero = e.Zero }));
        return new BackupVmRequest { Extents = message };
    }

    /// <summary>The request stream as the host wrote it.</summary>
    private sealed class Requests(IEnumerable<BackupVmRequest> messages) : IAsyncStreamReader<BackupVmRequest>
    {
        private readonly IEnumerator<BackupVmRequest> _messages = messages.GetEnumerator();

        public BackupVmRequest Current => _messages.Current;

        public Task<bool> MoveNext(CancellationToken cancellationToken) => Task.FromResult(_messages.MoveNext());
    }
}
