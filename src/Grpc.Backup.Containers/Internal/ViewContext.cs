namespace Grpc.Backup.Containers.Internal;

/// <summary>Everything a view builder needs: the checked options, the namespace, the work directory and the undo stack.</summary>
internal sealed record ViewContext(
    ContainerBackupOptions Options,
    UserNamespace Namespace,
    string WorkDirectory,
    CleanupStack Cleanup,
    IReadOnlyList<IncludedVolume> Included,
    IReadOnlyList<string> ExcludedRelativePaths);
