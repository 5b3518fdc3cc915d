namespace Grpc.Backup.Nbd.Tests;

/// <summary>
/// A real qemu-storage-daemon holding a copy-before-write snapshot of a raw disk exactly as the host builds it: a raw
/// fleecing image, a snapshot-access node exported writable with discard=unmap (<see cref="SnapshotExport"/>), and the
/// live disk exported through the copy-before-write node (<see cref="LiveExport"/>), so writes to it are the guest's.
/// </summary>
internal sealed class CbwSnapshotServer : IAsyncDisposable
{
    public const string SnapshotExport = "snap";
    public const string LiveExport = "live";

    private CbwSnapshotServer(NbdServer qemu, string imagePath)
    {
        Qemu = qemu;
        ImagePath = imagePath;
    }

    public NbdServer Qemu { get; }

    /// <summary>The live disk's raw image.</summary>
    public string ImagePath { get; }

    /// <summary>Starts the daemon over a sparse disk of <paramref name="diskSize"/> bytes beginning with <paramref name="data"/>.</summary>
    public static async Task<CbwSnapshotServer> StartAsync(TestDirectory directory, long diskSize, byte[] data)
    {
        var image = directory.File("disk.raw");
        TestData.CreateSparse(image, diskSize);
        TestData.WriteAt(image, 0, data);
        var fleece = directory.File("fleece.raw");
        TestData.CreateSparse(fleece, diskSize);
        var socket = directory.File("qsd.sock");
        var qemu = await NbdServer.StartAsync("qemu-storage-daemon", socket,
            "--blockdev", $"driver=file,node-name=disk0,filename={image}",
            "--blockdev", $$$"""{"driver":"raw","node-name":"fleece","discard":"unmap","file":{"driver":"file","filename":"{{{fleece}}}","discard":"unmap"}}""",
            "--blockdev", "driver=copy-before-write,node-name=cbw,file=disk0,target=fleece",
            "--blockdev", "driver=snapshot-access,node-name=snap,file=cbw,discard=unmap",
            "--nbd-server", $"addr.type=unix,addr.path={socket}",
            "--export", $"type=nbd,id=e0,node-name=snap,name={SnapshotExport},writable=on",
            "--export", $"type=nbd,id=e1,node-name=cbw,name={LiveExport},writable=on");
        return new CbwSnapshotServer(qemu, image);
    }

    /// <summary>A guard in front of the snapshot export, offering <c>base:allocation</c>.</summary>
    public Task<NbdGuard> StartGuardAsync(
        int maxBytesInFlight = NbdGuardOptions.DefaultMaxBytesInFlight, int maxRequestSize = NbdGuardOptions.DefaultMaxRequestSize) =>
        NbdGuard.StartAsync(new NbdGuardOptions
        {
            UpstreamSocketPath = Qemu.SocketPath,
            ExportName = SnapshotExport,
            MetaContexts = [NbdMetaContexts.BaseAllocation],
            MaxBytesInFlight = maxBytesInFlight,
            MaxRequestSize = maxRequestSize,
        });

    public ValueTask DisposeAsync() => Qemu.DisposeAsync();
}
