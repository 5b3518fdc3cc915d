namespace Grpc.Backup.Nbd;

/// <summary>Names of commonly used metadata contexts.</summary>
public static class NbdMetaContexts
{
    /// <summary>The standard allocation context (holes and known-zero ranges).</summary>
    public const string BaseAllocation = "base:allocation";

    /// <summary>Prefix of QEMU's dirty-bitmap contexts.</summary>
    public const string QemuDirtyBitmapPrefix = "qemu:dirty-bitmap:";

    /// <summary>The context QEMU uses to expose the dirty bitmap <paramref name="bitmapName"/>.</summary>
    public static string QemuDirtyBitmap(string bitmapName)
    {
        ArgumentException.ThrowIfNullOrEmpty(bitmapName);
        return QemuDirtyBitmapPrefix + bitmapName;
    }
}
