using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Directory.Tests.Infrastructure;
using static Grpc.Backup.Providers.Directory.Tests.Infrastructure.Images;

namespace Grpc.Backup.Providers.Directory.Tests;

public sealed class ConfigurationTests
{
    private static readonly DateTimeOffset Time = new(2025, 5, 1, 9, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Guest_and_firewall_configurations_come_back_byte_exact_and_a_missing_firewall_is_absent()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string source = provider.Work("s.raw");
        CreateSparse(source, MiB);
        // Not UTF-8, with CRLF, NUL and a trailing line without newline: stored and returned as bytes, never text.
        byte[] guestConfig = [.. "boot: order=scsi0\r\n"u8, 0xff, 0xfe, 0x00, 0x80, .. "\r\nname: caf"u8, 0xe9, .. "\n#qmdump#map:scsi0:drive-scsi0:local:raw:"u8];
        byte[] firewallConfig = [.. "[OPTIONS]\r\nenable: 1\r\n"u8, 0xc3, 0x28, .. "\r\n"u8];
        await using var export = await QemuNbdExport.ReadOnlyRawAsync(source, provider.Work("s.sock"));

        BackupOutcome withFirewall = await host.BackupAsync("400", Time, [new VolumeSpec("drive-scsi0", MiB, BitmapMode.New, export)],
            guestConfig, firewallConfig);
        BackupOutcome withoutFirewall = await host.BackupAsync("400", Time.AddDays(1),
            [new VolumeSpec("drive-scsi0", MiB, BitmapMode.None, export)], guestConfig);

        var restore = provider.Connection.Restore;
        ArchiveGetGuestConfigResponse guest = await restore.ArchiveGetGuestConfigAsync(new ArchiveGetGuestConfigRequest { ArchiveName = withFirewall.ArchiveName });
        ArchiveGetFirewallConfigResponse firewall = await restore.ArchiveGetFirewallConfigAsync(new ArchiveGetFirewallConfigRequest { ArchiveName = withFirewall.ArchiveName });
        ArchiveGetFirewallConfigResponse none = await restore.ArchiveGetFirewallConfigAsync(new ArchiveGetFirewallConfigRequest { ArchiveName = withoutFirewall.ArchiveName });
        ArchiveGetGuestConfigResponse guestAgain = await restore.ArchiveGetGuestConfigAsync(new ArchiveGetGuestConfigRequest { ArchiveName = withoutFirewall.ArchiveName });

        Assert.Equal(guestConfig, guest.GuestConfig.ToByteArray());
        Assert.True(firewall.Present);
        Assert.Equal(firewallConfig, firewall.FirewallConfig.ToByteArray());
        Assert.False(none.Present);
        Assert.True(none.FirewallConfig.IsEmpty);
        Assert.Equal(guestConfig, guestAgain.GuestConfig.ToByteArray());
        Assert.Equal(guestConfig, await File.ReadAllBytesAsync(Path.Combine(provider.RepositoryPath, withFirewall.ArchiveName, "guest.conf")));
        Assert.False(File.Exists(Path.Combine(provider.RepositoryPath, withoutFirewall.ArchiveName, "firewall.conf")));
    }
}
