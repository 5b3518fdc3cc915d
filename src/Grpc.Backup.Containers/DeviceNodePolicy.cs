namespace Grpc.Backup.Containers;

/// <summary>What restore does with character and block device members.</summary>
public enum DeviceNodePolicy
{
    /// <summary>
    /// Leave them out with a warning (the default). An unprivileged restore cannot create device nodes (mknod fails
    /// in a user namespace) and a running container gets its /dev from LXC anyway; Proxmox likewise extracts with
    /// <c>--exclude ./dev/*</c>. The member is dropped from the bytes tar receives, so tar never tries.
    /// </summary>
    Skip,

    /// <summary>Refuse the whole archive.</summary>
    Refuse,
}
