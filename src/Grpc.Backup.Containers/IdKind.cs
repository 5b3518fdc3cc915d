namespace Grpc.Backup.Containers;

/// <summary>Which id space a map range covers: <c>u</c> (user ids) or <c>g</c> (group ids) in an LXC id map.</summary>
public enum IdKind
{
    User,
    Group,
}
