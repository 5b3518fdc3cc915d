namespace Grpc.Backup.Containers;

/// <summary>What restore does with setuid/setgid bits on files.</summary>
public enum SetIdBitsPolicy
{
    /// <summary>
    /// Keep them (the default): a container needs its setuid programs (passwd, su, ping), and extraction runs in the
    /// container's user namespace, so a setuid-root file is owned by the container's root (host 100000), never by host
    /// root; the id check refuses owners outside the map. Proxmox restores with <c>-p</c> the same way.
    /// </summary>
    Keep,

    /// <summary>Refuse an archive with any setuid or setgid file (setgid directories are still allowed).</summary>
    Refuse,

    /// <summary>
    /// Clear the bits in the member's header before tar sees it, with a warning (what <c>grpc-backup files get</c> does
    /// unless asked to keep them: single files go to an operator's directory, not back into a container).
    /// </summary>
    Strip,
}
