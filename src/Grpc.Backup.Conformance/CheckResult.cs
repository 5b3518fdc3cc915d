namespace Grpc.Backup.Conformance;

/// <summary>One line of the report: the check's name, its outcome, and why (the failure or the reason it was skipped).</summary>
public sealed record CheckResult(string Name, CheckOutcome Outcome, string Detail, TimeSpan Duration);
