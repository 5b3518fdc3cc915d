using Google.Protobuf;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Core;

namespace Grpc.Backup.Tests;

/// <summary>The SDK's one check of BackupVmStart, shared by every C# provider.</summary>
public sealed class BackupVmValidationTests
{
    private const ulong Size = 4 << 20;

    [Fact]
    public void An_NBD_and_a_file_volume_pass_with_their_sources_and_modes()
    {
        IReadOnlyList<ValidatedVmVolume> volumes = BackupVmValidation.Validate(Start(
            Nbd("drive-scsi0", BitmapMode.Reuse, "qemu:dirty-bitmap:b", extra: 2),
            File("drive-virtio1", BitmapMode.New)));

        Assert.Equal(["drive-scsi0", "drive-virtio1"], volumes.Select(v => v.Device));
        Assert.True(volumes[0].IsIncremental);
        Assert.Equal("reuse", volumes[0].ModeName);
        Assert.Equal(2u, volumes[0].Nbd!.ExtraConnections);
        Assert.Null(volumes[0].File);
        Assert.False(volumes[1].IsIncremental);
        Assert.Equal("new", volumes[1].ModeName);
        Assert.NotNull(volumes[1].File);
        Assert.All(volumes, v => Assert.Equal((long)Size, v.SizeBytes));
    }

    public static TheoryData<string, VmVolume[]> Refused => new()
    {
        { "no volumes", [] },
        { "device name '../etc'", [Nbd("../etc", BitmapMode.New)] },
        { "device name 'sda\n'", [Nbd("sda\n", BitmapMode.New)] },
        { "listed twice", [Nbd("sda", BitmapMode.New), File("sda", BitmapMode.New)] },
        { "invalid size 0", [Nbd("sda", BitmapMode.New, size: 0)] },
        { "invalid size 9223372036854775808", [Nbd("sda", BitmapMode.New, size: (ulong)long.MaxValue + 1)] },
        { "no valid bitmap_mode", [Nbd("sda", (BitmapMode)7)] },
        { "REUSE but names no bitmap_context", [Nbd("sda", BitmapMode.Reuse)] },
        { "names a bitmap_context", [Nbd("sda", BitmapMode.New, "qemu:dirty-bitmap:b")] },
        { "extra connections", [Nbd("sda", BitmapMode.None, extra: 64)] },
        { "declared as File", [new VmVolume { DeviceName = "sda", SizeBytes = Size, BitmapMode = BitmapMode.None, Nbd = new NbdVolumeSource { Socket = Ref(FdKind.File) } }] },
        { "has no NBD socket", [new VmVolume { DeviceName = "sda", SizeBytes = Size, BitmapMode = BitmapMode.None, Nbd = new NbdVolumeSource() }] },
        { "not declared FD_KIND_FILE", [new VmVolume { DeviceName = "sda", SizeBytes = Size, BitmapMode = BitmapMode.None, File = new FileVolumeSource { File = Ref(FdKind.Pipe) } }] },
        { "has no source", [new VmVolume { DeviceName = "sda", SizeBytes = Size, BitmapMode = BitmapMode.None }] },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void Bad_starts_are_invalid_arguments_that_say_why(string why, VmVolume[] volumes)
    {
        var error = Assert.Throws<RpcException>(() => BackupVmValidation.Validate(Start(volumes)));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains(why, error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Extra_connections_may_not_reach_past_the_transfers_64_fds()
    {
        VmVolume volume = Nbd("sda", BitmapMode.None, extra: 60);
        volume.Nbd.Socket.Index = 3;
        Assert.Single(BackupVmValidation.Validate(Start(volume)));
        volume.Nbd.Socket.Index = 4;
        Assert.Throws<RpcException>(() => BackupVmValidation.Validate(Start(volume)));
    }

    private static BackupVmStart Start(params VmVolume[] volumes) => new() { BackupId = "b", Volumes = { volumes } };

    private static VmVolume Nbd(string device, BitmapMode mode, string context = "", uint extra = 0, ulong size = Size) => new()
    {
        DeviceName = device,
        SizeBytes = size,
        BitmapMode = mode,
        Nbd = new NbdVolumeSource { Socket = Ref(FdKind.NbdSocket), ExportName = device, BitmapContext = context, ExtraConnections = extra },
    };

    private static VmVolume File(string device, BitmapMode mode) => new()
    {
        DeviceName = device,
        SizeBytes = Size,
        BitmapMode = mode,
        File = new FileVolumeSource { File = Ref(FdKind.File) },
    };

    private static FdRef Ref(FdKind kind) => new() { TransferToken = ByteString.CopyFrom(new byte[16]), Index = 0, Kind = kind };
}
