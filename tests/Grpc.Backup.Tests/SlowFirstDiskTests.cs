using Grpc.Backup.Host;
using Grpc.Backup.Tests.Infrastructure;

namespace Grpc.Backup.Tests;

/// <summary>
/// A two-disk guest whose first disk takes over 20 s, through the directory provider, which shakes hands with the second
/// disk only after the first is copied (issue 15; see <see cref="SlowFirstDisk"/>). Before the host's NBD guard, QEMU
/// dropped the second connection after 10 s: "The NBD handshake for export 'drive-virtio1' failed: Broken pipe".
/// </summary>
public sealed class SlowFirstDiskTests
{
    [Fact]
    public async Task A_two_disk_guest_whose_first_disk_takes_over_20_s_restores_byte_exact()
    {
        using var work = new TempDirectory();
        await using var guest = await DemoGuestProcess.StartAsync(work.File("guest"), SlowFirstDisk.GuestArguments);
        await using var provider = await DirectoryProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        await SlowFirstDisk.BackUpAndRestoreAsync(connection, guest, work.Path);
    }
}
