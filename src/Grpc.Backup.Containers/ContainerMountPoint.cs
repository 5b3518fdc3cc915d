namespace Grpc.Backup.Containers;

/// <summary>
/// A volume mounted into the container besides its root file system (Proxmox <c>mpN</c>): the host directory (or
/// file) <paramref name="HostPath"/> appears at <paramref name="ContainerPath"/> (absolute inside the container).
/// With <paramref name="Backup"/> false it is left out of the backup: its mount point stays an empty directory.
/// </summary>
public sealed record ContainerMountPoint(string ContainerPath, string HostPath, bool Backup = true);
