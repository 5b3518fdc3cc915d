namespace Grpc.Backup.DemoGuest;

/// <summary>One disk of the demo guest: <c>NAME:FORMAT:SIZE_MIB</c> on the command line.</summary>
internal sealed record DemoDisk(string DeviceName, string Format, long SizeBytes, int Index)
{
    public string FileName => $"{DeviceName}.{(Format == "qcow2" ? "qcow2" : "raw")}";
    public string FormatNode => $"fmt{Index}";
    public string FilterNode => $"top{Index}";
    public string ThrottleGroup => $"tg{Index}";
    public string GuestExport => DeviceName;

    public static DemoDisk Parse(string text, int index)
    {
        string[] parts = text.Split(':');
        if (parts.Length != 3 || parts[1] is not ("raw" or "qcow2") || !long.TryParse(parts[2], out long mib) || mib <= 0)
        {
            throw new FormatException($"--disk {text}: expected NAME:raw|qcow2:SIZE_MIB");
        }
        return new DemoDisk(parts[0], parts[1], mib * 1024 * 1024, index);
    }
}
