using System.Text;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Tests;

/// <summary>
/// A provider hands the host an image that would make a format-probing tool read a host file into the restored disk.
/// The host never probes: it restores exactly the bytes it was given (data that begins with a qcow2 header is a
/// guest's data), and the host file's bytes end up in no target.
/// </summary>
public sealed class HostileRestoreSourceTests
{
    public static TheoryData<string> Cases => ["qcow2-backing-file", "qcow2-data-file", "qcow2-json-backing", "disguised-qcow2"];

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Hostile_images_restore_as_their_own_bytes_and_no_host_bytes_reach_the_target(string kind)
    {
        using var work = new TempDirectory();
        string secretText = "HOST-SECRET-" + Guid.NewGuid().ToString("N");
        string secret = work.File("secret.bin");
        await File.WriteAllTextAsync(secret, secretText + new string('\n', 4096));
        string image = await MakeHostileImageAsync(kind, work, secret);
        await using var provider = await InProcessProvider.StartAsync();
        provider.Restore.VolumeFile = image;
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        string target = work.File("target");

        var restored = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance)
            .RestoreAsync("100/hostile", new VmRestoreOptions { TargetDirectory = target }, CancellationToken.None);

        Assert.Equal(await File.ReadAllBytesAsync(image), await File.ReadAllBytesAsync(restored.Disks[ScriptedRestore.Device]));
        byte[] needle = Encoding.ASCII.GetBytes(secretText);
        foreach (string file in Directory.Exists(target) ? Directory.GetFiles(target, "*", SearchOption.AllDirectories) : [])
        {
            Assert.Equal(-1, (await File.ReadAllBytesAsync(file)).AsSpan().IndexOf(needle));
        }
        Assert.Equal(1, provider.Restore.VolumeCleanups);
        Assert.Equal(1, provider.Restore.VmCleanups);
    }

    [Fact]
    public async Task A_plain_raw_image_passes_the_same_checks_and_restores_exactly()
    {
        using var work = new TempDirectory();
        string image = work.File("good.raw");
        byte[] data = new byte[3 * 1024 * 1024 + 512];
        Random.Shared.NextBytes(data);
        await File.WriteAllBytesAsync(image, data);
        await using var provider = await InProcessProvider.StartAsync();
        provider.Restore.VolumeFile = image;
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);

        var restored = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance)
            .RestoreAsync("100/good", new VmRestoreOptions { TargetDirectory = work.File("target") }, CancellationToken.None);

        Assert.Equal(data, await File.ReadAllBytesAsync(restored.Disks[ScriptedRestore.Device]));
        Assert.Equal(1, provider.Restore.VmCleanups);
    }

    private static async Task<string> MakeHostileImageAsync(string kind, TempDirectory work, string secret)
    {
        string image = work.File(kind == "disguised-qcow2" ? "disk.raw" : "evil.qcow2");
        string[] arguments = kind switch
        {
            "qcow2-backing-file" or "disguised-qcow2" => ["create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", image, "1M"],
            "qcow2-data-file" => ["create", "-q", "-f", "qcow2", "-o", $"data_file={work.File("data.bin")},data_file_raw=on", image, "1M"],
            "qcow2-json-backing" => ["create", "-q", "-f", "qcow2", "-u", "-b", $"json:{{\"driver\":\"file\",\"filename\":\"{secret}\"}}", "-F", "raw", image, "1M"],
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        var (exitCode, _, stderr) = await ChildProcess.RunAsync("qemu-img", arguments);
        Assert.True(exitCode == 0, stderr);
        if (kind == "qcow2-data-file")
        {
            // The data file now holds the host secret: reading the qcow2 as qcow2 would return it.
            File.Copy(secret, work.File("data.bin"), overwrite: true);
        }
        return image;
    }
}
