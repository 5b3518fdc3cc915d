using System.Text;
using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Tests;

/// <summary>The per-disk options of the inventory: backup=no and size=, with errors that name the file and the line.</summary>
public sealed class InventoryDiskTests
{
    private const string Head = "type: vm\nqmp: /run/qmp.sock\n";

    [Fact]
    public void Backup_no_and_a_size_are_read_per_disk()
    {
        VmGuest guest = Parse(Head
            + "disk: drive-a file=/img/a.qcow2 format=qcow2 node=fmt0 filter=top0\n"
            + "disk: drive-b file=/img/b.raw format=raw node=fmt1 filter=top1 backup=no size=16M\n");

        Assert.Equal(["drive-a"], guest.BackedUpDisks.Select(d => d.DeviceName));
        Assert.Null(guest.Disks[0].SizeBytes);
        Assert.Equal(16UL << 20, guest.Disks[1].SizeBytes);
        Assert.False(guest.Disks[1].Backup);
    }

    [Theory]
    [InlineData("backup=maybe", "backup=maybe")]
    [InlineData("size=12x", "size=12x")]
    [InlineData("size=0", "size=0")]
    [InlineData("size=1000", "multiple of 512")]
    [InlineData("size=65T", "up to 64T")]
    public void A_bad_disk_option_names_the_file_and_the_line(string option, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => Parse(Head + $"disk: drive-a file=/img/a.raw format=raw node=fmt0 filter=top0 {option}\n"));

        Assert.Equal("/inventory/101.conf", error.File);
        Assert.Equal(3, error.Line);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    private static VmGuest Parse(string text) => GuestInventory.ParseVm("/inventory/101.conf", Encoding.UTF8.GetBytes(text));
}
