namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>A range of a volume and what to do with it.</summary>
internal readonly record struct PlannedExtent(long Offset, long Length, ExtentAction Action)
{
    public long End => Offset + Length;
}
