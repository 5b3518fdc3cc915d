using System.Diagnostics;
using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Containers;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Bench;

/// <summary>
/// ct-backup-50k: a container of 50,000 small files (about 1 GiB) backed up through the directory provider (mode stop,
/// its configured mechanism, durable on disk) against GNU <c>tar -c</c> of the same tree in the same user namespace,
/// writing to the same filesystem and synced. Both read from the page cache after a warm-up pass. ct-manifest-50k: the
/// file manifest of the same tree (what container verification compares), against the same tar.
/// ct-file-restore-first-listing and ct-file-restore-one-file: <c>grpc-backup files ls</c> of the last directory of the
/// backup and <c>files get</c> of one file in it, each against a full restore of the same backup (the same provider
/// stream, validated and extracted by tar in the userns).
/// </summary>
internal static class ContainerBench
{
    private const int Files = 50_000;
    private const int FilesPerDirectory = 500;
    private const int MeanFileBytes = 21_000;
    private const int HostBase = 100000;

    public static async Task<IReadOnlyList<BenchResult>> RunAsync(string work, string providerEndpoint)
    {
        string rootfs = Path.Combine(work, "rootfs");
        long bytes = CreateTree(rootfs);
        // The container's root must traverse to the tree (build/bench's work directory is a private mktemp).
        for (string? dir = Path.GetDirectoryName(Path.GetFullPath(work)); dir is not null; dir = Path.GetDirectoryName(dir))
        {
            File.SetUnixFileMode(dir, File.GetUnixFileMode(dir) | UnixFileMode.OtherExecute);
        }
        await Tool.RunAsync("chown", "-R", $"{HostBase}:{HostBase}", work);
        string inventory = Path.Combine(work, "inventory");
        Directory.CreateDirectory(inventory);
        await File.WriteAllTextAsync(Path.Combine(inventory, "200.conf"), $"type: ct\nrootfs: {rootfs}\nidmap: u 0 {HostBase} 65536\nidmap: g 0 {HostBase} 65536\n");
        ContainerGuest guest = GuestInventory.Load(inventory).Containers["200"];
        string peerOutput = Path.Combine(work, "peer", "tree.tar");
        Directory.CreateDirectory(Path.GetDirectoryName(peerOutput)!);
        await Tool.RunAsync("chown", $"{HostBase}:{HostBase}", Path.GetDirectoryName(peerOutput)!);
        await Tool.RunAsync("tar", "--create", "--file=/dev/null", "--directory", rootfs, ".");

        await using var connection = await ProviderConnection.ConnectAsync(ProviderEndpoint.Parse(providerEndpoint));
        string runtime = Path.Combine(work, "run");
        Directory.CreateDirectory(runtime);
        double ours = double.MaxValue, peer = double.MaxValue;
        ContainerBackupResult? last = null;
        for (int round = 0; round < 2; round++)
        {
            await using (UserNamespace ns = await UserNamespace.CreateAsync(guest.IdMap))
            {
                long start = Stopwatch.GetTimestamp();
                using Process tar = ns.Command("tar", "--create", "--file", peerOutput, "--directory", rootfs, ".").Start();
                tar.StandardInput.Close();
                await tar.WaitForExitAsync();
                if (tar.ExitCode != 0)
                {
                    throw new InvalidOperationException($"peer tar failed: {await tar.StandardError.ReadToEndAsync()}");
                }
                await Tool.RunAsync("sync", "-f", peerOutput);
                peer = Math.Min(peer, Stopwatch.GetElapsedTime(start).TotalSeconds);
            }
            File.Delete(peerOutput);

            string jobId = Guid.NewGuid().ToString();
            await connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId, StartTime = Timestamp.FromDateTime(DateTime.UtcNow) });
            long ourStart = Stopwatch.GetTimestamp();
            last = await new ContainerBackupRunner(connection, NullLogger<ContainerBackupRunner>.Instance)
                .BackupAsync(jobId, guest, new ContainerBackupRunOptions { RuntimeDirectory = runtime, TemporaryDirectory = work }, CancellationToken.None);
            ours = Math.Min(ours, Stopwatch.GetElapsedTime(ourStart).TotalSeconds);
            await connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = jobId, Success = true });
            if (round == 0)
            {
                await connection.Repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = last.ArchiveName });
            }
        }
        BenchResult[] files = await MeasureFileRestoreAsync(connection, last!.ArchiveName, guest.IdMap, work);
        await connection.Repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = last.ArchiveName });
        // The file manifest verification compares with (a job's file-manifest: yes): a second tar walk in the userns,
        // every regular file hashed.
        double manifest;
        FileManifest made;
        await using (UserNamespace ns = await UserNamespace.CreateAsync(guest.IdMap))
        {
            long start = Stopwatch.GetTimestamp();
            made = await FileManifest.ComputeAsync(ns, rootfs, [], CancellationToken.None);
            manifest = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        return
        [
            new BenchResult("ct-backup-50k", ours, "tar -c in the userns", peer,
                $"{Files} files, {bytes >> 20} MiB, mechanism {last!.Mechanism}, stored {last.Stats.ArchiveSizeBytes >> 20} MiB (zstd)"),
            new BenchResult("ct-manifest-50k", manifest, "tar -c in the userns", peer,
                $"{made.Entries.Count} entries, {made.ContentBytes >> 20} MiB hashed; {manifest / ours:P0} of the backup's time"),
            .. files,
        ];
    }

    private static async Task<BenchResult[]> MeasureFileRestoreAsync(ProviderConnection connection, string archive, IdMap idMap, string work)
    {
        var runner = new ContainerRestoreRunner(connection, NullLogger<ContainerRestoreRunner>.Instance);
        // A private root-only parent, as every restore needs.
        string parent = Path.Combine(work, "restores");
        Directory.CreateDirectory(parent);
        File.SetUnixFileMode(parent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        long start = Stopwatch.GetTimestamp();
        await runner.RestoreAsync(archive, new ContainerRestoreRunOptions
        {
            IdMap = idMap,
            TargetRootFileSystem = Path.Combine(parent, "full"),
            ConfigDirectory = Path.Combine(parent, "full-config"),
        }, CancellationToken.None);
        double full = Stopwatch.GetElapsedTime(start).TotalSeconds;

        // The last of the 100 directories by name; where it lies in the stream depends on the readdir order tar saw.
        string last = (await runner.ListFilesAsync(archive, "data", CancellationToken.None))[^1].Path;
        start = Stopwatch.GetTimestamp();
        IReadOnlyList<ArchiveEntry> listing = await runner.ListFilesAsync(archive, last, CancellationToken.None);
        double list = Stopwatch.GetElapsedTime(start).TotalSeconds;

        string file = listing[^1].Path;
        start = Stopwatch.GetTimestamp();
        await runner.ExtractFilesAsync(archive, new ContainerRestoreOptions { IdMap = idMap, TargetDirectory = Path.Combine(parent, "one"), Paths = [file] },
            CancellationToken.None);
        double one = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return
        [
            new BenchResult("ct-file-restore-first-listing", list, "full restore", full, $"files ls of {last} ({listing.Count} entries)"),
            new BenchResult("ct-file-restore-one-file", one, "full restore", full, $"files get of {file} ({listing[^1].Size} bytes)"),
        ];
    }

    /// <summary>Files of 1 to 41 KB (mean about 21 KB) of half-compressible content, in directories of 500.</summary>
    private static long CreateTree(string rootfs)
    {
        var random = new Random(50_000);
        byte[] block = new byte[2 * MeanFileBytes];
        long total = 0;
        for (int i = 0; i < Files; i++)
        {
            string directory = Path.Combine(rootfs, "data", $"d{i / FilesPerDirectory:D3}");
            if (i % FilesPerDirectory == 0)
            {
                Directory.CreateDirectory(directory);
            }
            int length = 1000 + random.Next(2 * MeanFileBytes - 2000);
            random.NextBytes(block.AsSpan(0, length / 2));
            File.WriteAllBytes(Path.Combine(directory, $"f{i:D5}"), block.AsSpan(0, length).ToArray());
            total += length;
        }
        return total;
    }
}
