namespace Grpc.Backup.Containers;

/// <summary>Where and how to restore a container's tree from a tar archive.</summary>
public sealed class ContainerRestoreOptions
{
    /// <summary>The target container's id map. A privileged map is refused.</summary>
    public required IdMap IdMap { get; init; }

    /// <summary>
    /// The new root file system directory. It must not exist; its parent must, owned by root with mode 0700 (as Proxmox
    /// keeps a rootfs), so that host users cannot reach the restored setuid files. The container's root reaches the
    /// target through a bind in its private mount namespace.
    /// </summary>
    public required string TargetDirectory { get; init; }

    /// <summary>Limits and policies; <see cref="TarValidationOptions.IdMap"/> defaults to <see cref="IdMap"/>.</summary>
    public TarValidationOptions Validation { get; init; } = new();

    /// <summary>
    /// A file restore: only these archive paths and the trees under them are extracted (as the archive spells them;
    /// "/etc/passwd" and "etc/passwd" are the same; "/" is everything). Null: the whole archive. Each must be in the
    /// archive, or the restore fails and the target is removed.
    /// </summary>
    public IReadOnlyList<string>? Paths { get; init; }

    /// <summary>The host's bandwidth limit for reading the archive, in bytes per second (of tar data); 0 is unlimited.</summary>
    public ulong BytesPerSecond { get; init; }
}
