namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>One archive: the directory <c>&lt;repo&gt;/&lt;guest_id&gt;/&lt;timestamp&gt;</c>, named <c>guest_id/timestamp</c>.</summary>
internal sealed record ArchiveRef(string GuestId, string Timestamp)
{
    public string Name => GuestId + "/" + Timestamp;

    public override string ToString() => Name;
}
