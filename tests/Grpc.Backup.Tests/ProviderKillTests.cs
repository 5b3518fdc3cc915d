using System.Diagnostics;
using System.Globalization;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Grpc.Backup.Tests;

/// <summary>
/// kill -9 of the provider at 20 points of a backup, not one (issue 15): while JobInit is in flight, as the host sends
/// BackupVmStart, as the host begins the commit (the stream is over; the log hand-off and BackupCleanup(success=true)
/// follow), and at 17 seeded random positions of the copy, read from the provider's own progress events. The provider is
/// frozen (SIGSTOP) the moment the point is reached and then killed (SIGKILL), so it never gets further. After each kill:
/// the guest's qemu-storage-daemon runs; no export, block node, backup object, background bitmap, fleecing file, mount,
/// runtime file or process of the backup is left; the guest lock is free; and after a restart of the provider the next
/// backup is incremental and restores byte-exact to its instant, which differs from the last one (the guest's writes
/// went on landing).
/// </summary>
public sealed class ProviderKillTests(ITestOutputHelper output)
{
    private const int Seed = 15;
    private const int ProgressPoints = 17;

    /// <summary>The job's limit, enforced by the host (and passed to the provider): a 16 MiB disk takes four seconds, so
    /// progress events come often enough to stop the provider near each fraction.</summary>
    private const ulong BandwidthLimit = 4 << 20;

    private const string BeforeStart = " bytes, bitmap ";
    private const string BeforeCommit = "BackupCleanup(success=true) decides";

    [Fact]
    public async Task A_provider_killed_at_twenty_points_of_a_backup_leaves_the_guest_whole_and_the_next_backup_is_exact()
    {
        using var work = new TempDirectory();
        await using var guest = await DemoGuestProcess.StartAsync(work.File("guest"), "--disk", "drive-virtio0:qcow2:16", "--write-interval-ms", "20");
        await using var provider = await DirectoryProviderProcess.StartAsync();
        await using (var first = await ProviderConnection.ConnectAsync(provider.Endpoint))
        {
            await VmBackupTests.BackupAsync(first, guest, work);
        }
        IReadOnlyDictionary<string, string> lastInstant = guest.LastInstant();
        GuestGraph clean = await GuestGraph.QueryAsync(guest.Guest.QmpSocket);
        int qsd = int.Parse(File.ReadAllText(Path.Combine(guest.Directory, "qsd.pid")).Trim(), CultureInfo.InvariantCulture);

        var random = new Random(Seed);
        var points = new List<KillPoint> { KillPoint.Phase("JobInit in flight"), KillPoint.Phase("BackupVmStart"), KillPoint.Phase("commit") };
        points.AddRange(Enumerable.Range(0, ProgressPoints).Select(_ => KillPoint.At(0.02 + 0.93 * random.NextDouble())));
        var outcomes = new List<string>();
        for (int i = 0; i < points.Count; i++)
        {
            var watch = Stopwatch.StartNew();
            string reached = await KillAtAsync(points[i], provider, guest, work);
            string line = $"point {i + 1,2} {points[i]}: killed at {reached}; the host's backup failed after {watch.Elapsed.TotalSeconds:F1} s";
            output.WriteLine(line);
            outcomes.Add(line);

            Assert.True(!guest.Process.HasExited && Directory.Exists($"/proc/{qsd}"), $"{line}: the guest died");
            GuestGraph after = await GuestGraph.QueryAsync(guest.Guest.QmpSocket);
            Assert.True(clean.Exports.SequenceEqual(after.Exports) && clean.Nodes.SequenceEqual(after.Nodes) && !after.BackgroundBitmaps.Any()
                && after.BackupObjects.Count == 0, $"{line}: the guest holds {after}, clean it held {clean}");
            Assert.Empty(Directory.GetFiles(work.File("fleece")));
            VmBackupTests.AssertNoHostLeftovers(work);
            using (GuestLock? free = GuestLock.TryAcquire(work.File("locks"), "100", out int holder))
            {
                Assert.True(free is not null, $"{line}: process {holder} still holds the guest lock");
            }
            AssertNoProcessesUnder(provider.RepositoryPath, []);
            AssertNoProcessesUnder(work.Path, [guest.Process.Id, qsd]);

            await provider.RestartAsync();
            await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
            VmBackupResult next = await VmBackupTests.BackupAsync(connection, guest, work);
            IReadOnlyDictionary<string, string> instant = guest.LastInstant();
            Assert.True(next.Volumes.All(v => v.BitmapMode == BitmapMode.Reuse), $"{line}: the next backup was not incremental");
            Assert.NotEqual(lastInstant, instant);
            await VmBackupTests.AssertRestoresToAsync(connection, next, instant, work.File($"restore{i}"));
            Directory.Delete(work.File($"restore{i}"), recursive: true);
            lastInstant = instant;
        }
        Assert.Equal(points.Count, outcomes.Count);
    }

    /// <summary>Runs a backup, freezes the provider at <paramref name="point"/>, kills it and waits for the host's failure.</summary>
    /// <returns>Where the backup was when the provider was frozen.</returns>
    private static async Task<string> KillAtAsync(KillPoint point, DirectoryProviderProcess provider, DemoGuestProcess guest, TempDirectory work)
    {
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        var frozen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Freeze(string where)
        {
            if (!frozen.Task.IsCompleted)
            {
                provider.Process.Signal("STOP");
                frozen.TrySetResult(where);
            }
        }

        Task backup;
        if (point.Name == "JobInit in flight")
        {
            Freeze("JobInit sent to the frozen provider");
            backup = JobSession.StartAsync(connection, Guid.NewGuid().ToString(), null, _ => { }, CancellationToken.None);
        }
        else
        {
            // A copy point freezes at the commit at the latest: under load the provider's progress events come seldom,
            // and the one that crosses a late fraction may be its last, after the copy ended; the kill must still land
            // before BackupCleanup(success=true), or the backup succeeds and there is nothing to test.
            StepLogger<VmBackupRunner> logger = point.Name switch
            {
                "BackupVmStart" => new StepLogger<VmBackupRunner>(BeforeStart, () => Freeze(point.Name)),
                "commit" => new StepLogger<VmBackupRunner>(BeforeCommit, () => Freeze(point.Name)),
                _ => new StepLogger<VmBackupRunner>(BeforeCommit, () => Freeze($"the commit (no progress event crossed {point.Fraction:P0} before it)")),
            };
            var progress = new SynchronousProgress(p =>
            {
                if (point.Fraction is { } fraction && p.BytesTotal > 0 && (double)p.BytesDone / p.BytesTotal >= fraction)
                {
                    Freeze($"{p.BytesDone} of {p.BytesTotal} bytes ({100.0 * p.BytesDone / p.BytesTotal:F0}%)");
                }
            });
            backup = VmBackupTests.BackupAsync(connection, guest, work, BandwidthLimit, progress, logger);
        }
        await Task.WhenAny(frozen.Task, backup);
        Assert.True(frozen.Task.IsCompleted, $"{point}: the backup ended before the point ({backup.Exception?.GetBaseException().Message})");
        await provider.KillAsync();
        Exception failure = await Assert.ThrowsAnyAsync<Exception>(() => backup.WaitAsync(TimeSpan.FromMinutes(3)));
        Assert.IsNotType<TimeoutException>(failure);
        return await frozen.Task;
    }

    /// <summary>No process but <paramref name="expected"/> has <paramref name="directory"/> in its command line.</summary>
    private static void AssertNoProcessesUnder(string directory, int[] expected)
    {
        var left = new List<string>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid) || expected.Contains(pid) || pid == Environment.ProcessId)
            {
                continue;
            }
            try
            {
                string commandLine = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (commandLine.Contains(directory, StringComparison.Ordinal))
                {
                    left.Add($"{pid}: {commandLine}");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process ended meanwhile.
            }
        }
        Assert.True(left.Count == 0, "processes of the backup are left:\n" + string.Join('\n', left));
    }

    /// <summary>A named phase of the backup, or a position in its copy (a fraction of the bytes the provider reports).</summary>
    private sealed record KillPoint(string Name, double? Fraction)
    {
        public static KillPoint Phase(string name) => new(name, null);

        public static KillPoint At(double fraction) => new("copy", fraction);

        public override string ToString() => Fraction is { } f ? $"copy at {f:P0}" : Name;
    }
}
