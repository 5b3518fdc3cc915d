namespace Grpc.Backup.Service.Internal.Catalog;

/// <summary>
/// The last verification of one backup: <see cref="State"/> is <c>verified</c>, <c>failed</c> (<see cref="Detail"/>
/// names the mismatching volume or file) or <c>not-verifiable</c> (nothing was recorded to compare with).
/// </summary>
internal sealed record VerificationRecord(string Storage, string Archive, string State, string Detail, DateTime Time, string TaskId)
{
    public const string Verified = "verified";
    public const string Failed = "failed";
    public const string NotVerifiable = "not-verifiable";
}
