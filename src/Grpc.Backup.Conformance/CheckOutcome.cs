namespace Grpc.Backup.Conformance;

/// <summary>How one conformance check ended.</summary>
public enum CheckOutcome
{
    Passed,
    Failed,
    /// <summary>Not run: the provider does not advertise what it needs, or a check it depends on failed.</summary>
    Skipped,
}
