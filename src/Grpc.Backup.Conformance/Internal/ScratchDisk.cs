namespace Grpc.Backup.Conformance.Internal;

/// <summary>One disk of the scratch guest, with the node names the inventory and snapshot access expect.</summary>
internal sealed record ScratchDisk(string DeviceName, string Format, long SizeBytes, int Index)
{
    public string FileName => $"{DeviceName}.{Format}";
    public string FormatNode => $"fmt{Index}";
    public string FilterNode => $"top{Index}";
    public string ThrottleGroup => $"tg{Index}";
}
