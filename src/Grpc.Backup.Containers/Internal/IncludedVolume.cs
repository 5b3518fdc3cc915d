namespace Grpc.Backup.Containers.Internal;

/// <summary>A backed-up mount point: where it is in the container (relative, "mnt/data") and its host source.</summary>
internal sealed record IncludedVolume(string RelativePath, string HostPath, bool IsDirectory)
{
    public int Depth => RelativePath.Count(c => c == '/');
}
