namespace Grpc.Backup.Qemu;

/// <summary>The QEMU version announced in the QMP greeting, e.g. 7.2.22.</summary>
/// <param name="Package">Distribution package string, e.g. <c>Debian 1:7.2+dfsg-7</c>; may be empty.</param>
public sealed record QmpVersion(int Major, int Minor, int Micro, string Package)
{
    /// <summary>The numeric part as a <see cref="System.Version"/>, convenient for comparisons.</summary>
    public Version ToVersion() => new(Major, Minor, Micro);

    public override string ToString()
        => Package.Length == 0 ? $"{Major}.{Minor}.{Micro}" : $"{Major}.{Minor}.{Micro} ({Package})";
}
