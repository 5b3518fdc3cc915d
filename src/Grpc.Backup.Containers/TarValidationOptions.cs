namespace Grpc.Backup.Containers;

/// <summary>Limits and policies for an untrusted tar archive.</summary>
public sealed record TarValidationOptions
{
    public const long TiB = 1L << 40;

    /// <summary>The largest size one member may declare (its apparent size for sparse files). Default 1 TiB.</summary>
    public long MaxMemberSize { get; init; } = TiB;

    /// <summary>The largest sum of declared member sizes. Default 16 TiB.</summary>
    public long MaxTotalSize { get; init; } = 16 * TiB;

    /// <summary>
    /// The most members an archive may have (the validator keeps each member's path to check links and duplicates, so
    /// this bounds the host's memory). Default 4 million, several times a large distribution's root file system.
    /// </summary>
    public long MaxMembers { get; init; } = 4_000_000;

    /// <summary>The largest pax extended header or GNU long name/link a member may carry. Default 16 MiB.</summary>
    public int MaxMetadataSize { get; init; } = 16 << 20;

    public DeviceNodePolicy DeviceNodes { get; init; } = DeviceNodePolicy.Skip;

    public SetIdBitsPolicy SetIdBits { get; init; } = SetIdBitsPolicy.Keep;

    /// <summary>
    /// When set (and unprivileged), every member's uid and gid must be covered by this map: tar could not give a
    /// member an owner the container does not have, and failing before extraction names the member.
    /// </summary>
    public IdMap? IdMap { get; init; }
}
