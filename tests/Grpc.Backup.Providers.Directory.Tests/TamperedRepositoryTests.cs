using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Directory.Tests.Infrastructure;
using Grpc.Core;
using static Grpc.Backup.Providers.Directory.Tests.Infrastructure.Images;

namespace Grpc.Backup.Providers.Directory.Tests;

/// <summary>
/// The repository is untrusted storage (NFS, a compromised host): an incremental's qcow2 is replaced on disk by one
/// whose backing names a driver (blkdebug, json:, an NBD socket), a host file, or that declares a huge disk. The
/// provider refuses to serve each one (DATA_LOSS, naming why) instead of letting its qemu-nbd read a host file or
/// socket into the restored disk; the untouched full still restores byte-exact.
/// </summary>
public sealed class TamperedRepositoryTests
{
    private const string Device = "drive-scsi0";
    private static readonly DateTimeOffset Time = new(2025, 4, 1, 8, 0, 0, TimeSpan.Zero);

    public static TheoryData<string> Cases => ["blkdebug", "json", "nbd-unix", "host-path", "huge-size"];

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_tampered_incremental_is_refused_and_no_host_bytes_are_served(string kind)
    {
        string secretText = "HOST-SECRET-" + Guid.NewGuid().ToString("N");
        string secret = Path.Combine("/root", "grpc-backup-test-secret-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllTextAsync(secret, secretText + new string('\n', 64 * 1024));
        try
        {
            await using var provider = await DirectoryProvider.StartAsync();
            var host = new SimulatedHost(provider.Connection);
            Qcow2Disk disk = await Qcow2Disk.CreateAsync(provider.Work("disk.qcow2"), 32 * MiB, seed: 5);
            string fullSha = await disk.Sha256Async();
            BackupOutcome full = await BackupAsync(host, provider, disk, 0, BitmapMode.New);
            await disk.ClearBitmapAsync();
            await disk.WriteAsync(0xab, 1 * MiB, 64 * 1024);
            BackupOutcome incremental = await BackupAsync(host, provider, disk, 1, BitmapMode.Reuse);

            string image = System.IO.Directory.GetFiles(provider.RepositoryPath, "*.qcow2", SearchOption.AllDirectories).Single();
            File.Delete(image);
            string[] arguments = kind switch
            {
                "blkdebug" => ["create", "-q", "-f", "qcow2", "-u", "-b", "blkdebug::" + secret, "-F", "raw", image, "32M"],
                "json" => ["create", "-q", "-f", "qcow2", "-u", "-b", $"json:{{\"driver\":\"raw\",\"file\":{{\"driver\":\"file\",\"filename\":\"{secret}\"}}}}",
                    "-F", "raw", image, "32M"],
                "nbd-unix" => ["create", "-q", "-f", "qcow2", "-u", "-b", "nbd+unix:///?socket=/run/grpc-backup-nonexistent.sock", "-F", "raw", image, "32M"],
                "host-path" => ["create", "-q", "-f", "qcow2", "-u", "-b", secret, "-F", "raw", image, "32M"],
                "huge-size" => ["create", "-q", "-f", "qcow2", image, "10G"],
                _ => throw new ArgumentOutOfRangeException(nameof(kind)),
            };
            var (exitCode, _, stderr) = await ChildProcess.RunAsync("qemu-img", arguments);
            Assert.True(exitCode == 0, stderr);

            var error = await Assert.ThrowsAsync<RpcException>(() => host.RestoreAsync(incremental.ArchiveName, Device));

            Assert.Equal(StatusCode.DataLoss, error.StatusCode);
            Assert.Contains(kind == "huge-size" ? "declares 10737418240 bytes" : kind == "host-path" ? "outside" : "not a plain file",
                error.Status.Detail, StringComparison.Ordinal);
            // The full was not touched and still restores exactly.
            Assert.Equal(fullSha, (await host.RestoreAsync(full.ArchiveName, Device)).Sha256);
        }
        finally
        {
            File.Delete(secret);
        }
    }

    [Fact]
    public async Task An_incremental_backup_never_stacks_on_a_tampered_chain()
    {
        string secretText = "HOST-SECRET-" + Guid.NewGuid().ToString("N");
        string secret = Path.Combine("/root", "grpc-backup-test-secret-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllTextAsync(secret, secretText + new string('\n', 64 * 1024));
        try
        {
            await using var provider = await DirectoryProvider.StartAsync();
            var host = new SimulatedHost(provider.Connection);
            Qcow2Disk disk = await Qcow2Disk.CreateAsync(provider.Work("disk.qcow2"), 32 * MiB, seed: 6);
            await BackupAsync(host, provider, disk, 0, BitmapMode.New);
            await disk.ClearBitmapAsync();
            await disk.WriteAsync(0xab, 1 * MiB, 64 * 1024);
            await BackupAsync(host, provider, disk, 1, BitmapMode.Reuse);
            await disk.ClearBitmapAsync();
            string image = System.IO.Directory.GetFiles(provider.RepositoryPath, "*.qcow2", SearchOption.AllDirectories).Single();
            File.Delete(image);
            var (exitCode, _, stderr) = await ChildProcess.RunAsync("qemu-img",
                ["create", "-q", "-f", "qcow2", "-u", "-b", "blkdebug::" + secret, "-F", "raw", image, "32M"]);
            Assert.True(exitCode == 0, stderr);
            await disk.WriteAsync(0xcd, 2 * MiB, 64 * 1024);

            await Assert.ThrowsAnyAsync<Exception>(() => BackupAsync(host, provider, disk, 2, BitmapMode.Reuse));

            byte[] needle = System.Text.Encoding.ASCII.GetBytes(secretText);
            foreach (string file in System.IO.Directory.GetFiles(provider.RepositoryPath, "*", SearchOption.AllDirectories))
            {
                Assert.Equal(-1, (await File.ReadAllBytesAsync(file)).AsSpan().IndexOf(needle));
            }
        }
        finally
        {
            File.Delete(secret);
        }
    }

    private static async Task<BackupOutcome> BackupAsync(SimulatedHost host, DirectoryProvider provider, Qcow2Disk disk, int hour, BitmapMode mode)
    {
        bool incremental = mode == BitmapMode.Reuse;
        await using QemuNbdExport export = await disk.ExportAsync(provider.Work($"export{hour}.sock"), withBitmap: incremental);
        return await host.BackupAsync("300", Time.AddHours(hour),
            [new VolumeSpec(Device, disk.Size, mode, export, incremental ? Qcow2Disk.BitmapContext : "")]);
    }
}
