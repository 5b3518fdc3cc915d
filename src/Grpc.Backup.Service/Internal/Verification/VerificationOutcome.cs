namespace Grpc.Backup.Service.Internal.Verification;

/// <summary>What verifying one backup found: a <see cref="Catalog.VerificationRecord"/> state and its detail.</summary>
internal sealed record VerificationOutcome(string State, string Detail);
