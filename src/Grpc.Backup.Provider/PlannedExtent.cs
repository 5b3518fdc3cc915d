namespace Grpc.Backup.Provider;

/// <summary>A range of a volume and what to do with it.</summary>
public readonly record struct PlannedExtent(long Offset, long Length, ExtentAction Action)
{
    public long End => Offset + Length;
}
