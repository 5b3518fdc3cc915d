using Grpc.Backup.Host;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Directory.Tests.Infrastructure;
using static Grpc.Backup.Providers.Directory.Tests.Infrastructure.Images;

namespace Grpc.Backup.Providers.Directory.Tests;

/// <summary>What the provider holds after work is done: a long-running sidecar must not accumulate fds.</summary>
public sealed class ResourceTests
{
    private const string Device = "drive-scsi0";
    private static readonly DateTimeOffset Day = new(2025, 6, 2, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task A_prune_of_100_backups_leaves_the_provider_with_the_fds_it_had()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        // Chains (a full, then incrementals), restarted every tenth backup as a weekly full would: deleting each base
        // runs qemu-img on its child, one tool per removed backup that has one. Short chains keep the setup linear:
        // every incremental reads its whole chain link by link before stacking on it.
        Qcow2Disk disk = await Qcow2Disk.CreateAsync(provider.Work("disk.qcow2"), 1 * MiB, seed: 5);
        const int Backups = 102;
        for (int i = 0; i < Backups; i++)
        {
            bool incremental = i % 10 != 0;
            await using (QemuNbdExport export = await disk.ExportAsync(provider.Work($"e{i}.sock"), incremental))
            {
                await host.BackupAsync("900", Day.AddMinutes(i),
                    [new VolumeSpec(Device, disk.Size, incremental ? BitmapMode.Reuse : BitmapMode.New, export,
                        incremental ? Qcow2Disk.BitmapContext : "")]);
            }
            await disk.ClearBitmapAsync();
        }
        var repository = provider.Connection.Repository;
        // Warm-up: one removal, so whatever the runtime opens once (the child-reaping machinery) is open before counting.
        await repository.PruneBackupsAsync(new PruneBackupsRequest { GuestId = "900", Policy = new RetentionPolicy { KeepLast = Backups - 1 } });
        (int fdsBefore, int pipesBefore) = OpenFds(provider.Process.Id);

        PruneBackupsResponse pruned = await repository.PruneBackupsAsync(new PruneBackupsRequest
        {
            GuestId = "900", Policy = new RetentionPolicy { KeepLast = 1 },
        }, deadline: ProviderDeadlines.FromNow(ProviderDeadlines.Preparation));
        (int fdsAfter, int pipesAfter) = OpenFds(provider.Process.Id);

        Assert.Equal(100, pruned.Decisions.Count(d => !d.Keep));
        Assert.Single(provider.ArchiveDirectories());
        // No garbage collection is waited for: every pipe of every qemu-img must be closed when its call returns.
        Assert.Equal(pipesBefore, pipesAfter);
        Assert.Equal(fdsBefore, fdsAfter);
    }

    [Fact]
    public async Task With_metrics_listen_the_provider_serves_its_process_figures_on_a_0600_socket_and_nothing_else()
    {
        string socketPath = Path.Combine(Path.GetTempPath(), $"gb-metrics-{Guid.NewGuid():N}.sock");
        await using var provider = await DirectoryProvider.StartAsync("--metrics-listen", "unix:" + socketPath);
        try
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socketPath));
            using var http = new HttpClient(new SocketsHttpHandler
            {
                ConnectCallback = async (_, cancellationToken) =>
                {
                    var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream,
                        System.Net.Sockets.ProtocolType.Unspecified);
                    await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(socketPath), cancellationToken);
                    return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
                },
            });
            string scrape = await http.GetStringAsync("http://provider/metrics");
            int fds = OpenFds(provider.Process.Id).Fds;

            double scraped = Value(scrape, "grpc_backup_process_open_fds");
            Assert.InRange(scraped, fds - 10, fds + 10);
            Assert.True(Value(scrape, "grpc_backup_process_resident_memory_bytes") > 10 << 20, scrape);
            Assert.True(Value(scrape, "grpc_backup_process_threads") > 1, scrape);
            Assert.True(Value(scrape, "grpc_backup_process_gc_heap_bytes") > 0, scrape);
            Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.GetAsync("http://provider/")).StatusCode);
            Assert.Equal(System.Net.HttpStatusCode.NotFound,
                (await http.PostAsync("http://provider/backup.provider.v1.Identity/GetProviderInfo", new ByteArrayContent([]))).StatusCode);
        }
        finally
        {
            File.Delete(socketPath);
        }
    }

    private static double Value(string scrape, string name)
    {
        var match = System.Text.RegularExpressions.Regex.Match(scrape, $@"^{name}(\{{[^}}]*\}})? ([0-9.e+E-]+)",
            System.Text.RegularExpressions.RegexOptions.Multiline);
        Assert.True(match.Success, $"{name} is not in the scrape:\n{scrape}");
        return double.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The provider's open fds, and how many of them are pipes, read from /proc.</summary>
    private static (int Fds, int Pipes) OpenFds(int pid)
    {
        int fds = 0;
        int pipes = 0;
        foreach (string fd in System.IO.Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
        {
            fds++;
            if (new FileInfo(fd).LinkTarget?.StartsWith("pipe:", StringComparison.Ordinal) == true)
            {
                pipes++;
            }
        }
        return (fds, pipes);
    }
}
