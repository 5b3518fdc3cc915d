namespace Grpc.Backup.Transport.Tests.Support;

/// <summary>A fact that needs a block device to open (a loop device; root can open an unbound one).</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class BlockDeviceFactAttribute : FactAttribute
{
    public const string Device = "/dev/loop0";

    public BlockDeviceFactAttribute()
    {
        if (!File.Exists(Device) || TestInterop.geteuid() != 0)
        {
            Skip = $"needs root and {Device}";
        }
    }
}
