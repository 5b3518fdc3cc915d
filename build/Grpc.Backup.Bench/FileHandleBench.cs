using System.Diagnostics;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;
using Grpc.Backup.Qemu;

namespace Grpc.Backup.Bench;

/// <summary>
/// vm-full-file-handle: a full backup through the FILE_HANDLE mechanism (the host mounts the snapshot export with nbdfuse
/// and passes the fd) against `cat` of the same kind of mounted snapshot file into a file on the same filesystem.
/// </summary>
internal static class FileHandleBench
{
    public static async Task<BenchResult> RunAsync(string work, string providerEndpoint, string guestDir)
    {
        VmGuest guest = GuestInventory.Load(Path.Combine(guestDir, "inventory")).Vms["100"];
        VmDisk disk = guest.Disks[0];
        long size = new FileInfo(disk.ImagePath).Length;
        var (fleece, runtime) = BenchDirectories.Create(work);

        double peer = double.MaxValue;
        for (int round = 0; round < 2; round++)
        {
            await using var qmp = await QmpClient.ConnectAsync(guest.QmpSocket);
            var access = await VmSnapshotAccess.SetupAsync(qmp,
                [new SnapshotDisk(disk.DeviceName, disk.FormatNode, disk.FilterNode, disk.ThrottleGroup, false, BitmapRequest.None)],
                new SnapshotAccessOptions { FleecingDirectory = fleece, NbdSocketPath = Path.Combine(runtime, "peer-fh.sock"), StorageId = "peerfh" });
            string mount = Path.Combine(work, "peer-mount");
            string output = Path.Combine(work, "cat.raw");
            Directory.CreateDirectory(mount);
            Process? nbdfuse = null;
            try
            {
                SnapshotExport export = access.Exports[0];
                string pidFile = Path.Combine(work, "peer-nbdfuse.pid");
                nbdfuse = Process.Start("nbdfuse", ["-P", pidFile, mount, $"nbd+unix:///{export.ExportName}?socket={export.NbdSocketPath}"]);
                while (!File.Exists(pidFile))
                {
                    await Task.Delay(20);
                }
                File.Delete(pidFile);
                var start = Stopwatch.GetTimestamp();
                await Tool.RunAsync("bash", "-c", "cat \"$1\" > \"$2\" && sync -f \"$2\"", "cat", Path.Combine(mount, "nbd"), output);
                peer = Math.Min(peer, Stopwatch.GetElapsedTime(start).TotalSeconds);
            }
            finally
            {
                await Tool.RunAsync("fusermount3", "-u", mount);
                if (nbdfuse is not null)
                {
                    await nbdfuse.WaitForExitAsync();
                    nbdfuse.Dispose();
                }
                await access.TeardownAsync(false);
                File.Delete(output);
            }
        }

        await using var connection = await ProviderConnection.ConnectAsync(ProviderEndpoint.Parse(providerEndpoint));
        double ours = double.MaxValue;
        long bytesRead = 0;
        for (int round = 0; round < 2; round++)
        {
            var start = Stopwatch.GetTimestamp();
            VmBackupResult full = await VmBench.BackupAsync(connection, guest, fleece, runtime, storage: "benchfh" + round);
            ours = Math.Min(ours, Stopwatch.GetElapsedTime(start).TotalSeconds);
            bytesRead = full.Volumes.Sum(v => (long)v.BytesRead);
        }
        return new BenchResult("vm-full-file-handle", ours, "cat of the nbdfuse snapshot file + sync", peer,
            $"{size >> 20} MiB disk, {bytesRead >> 20} MiB read by ours");
    }
}
