namespace Grpc.Backup.Qemu;

/// <summary>Settings for <see cref="OfflineImageExport.StartAsync"/>.</summary>
public sealed class OfflineImageExportOptions
{
    /// <summary>The stopped VM's disk image.</summary>
    public required string ImagePath { get; init; }

    /// <summary>The image format, always given explicitly (<c>qcow2</c> or <c>raw</c>); the image is never probed.</summary>
    public required string Format { get; init; }

    /// <summary>The device name; also the NBD export name.</summary>
    public required string DeviceName { get; init; }

    /// <summary>A private Unix socket path for qemu-nbd.</summary>
    public required string NbdSocketPath { get; init; }

    /// <summary>The stable bitmap's name (see <see cref="SnapshotAccessOptions.GetBitmapName"/>).</summary>
    public required string BitmapName { get; init; }

    /// <summary>What the provider asked for the bitmap. Raw images cannot store bitmaps and always get None.</summary>
    public BitmapRequest Bitmap { get; init; } = BitmapRequest.Use;

    /// <summary>How many NBD clients may connect at once (<c>--shared</c>).</summary>
    public int MaxClients { get; init; } = 4;

    /// <summary>How long qemu-nbd may take to start listening.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
