using Grpc.Backup.Management.V1;

namespace Grpc.Backup.Cli;

/// <summary>The words the CLI prints for states.</summary>
internal static class Names
{
    public static string Of(TaskState state) => state switch
    {
        TaskState.Queued => "queued",
        TaskState.Running => "running",
        TaskState.Succeeded => "succeeded",
        TaskState.Failed => "failed",
        TaskState.Cancelled => "cancelled",
        _ => "unknown",
    };

    public static string Of(VerificationState state) => state switch
    {
        VerificationState.Verified => "verified",
        VerificationState.Failed => "failed",
        VerificationState.NotVerifiable => "not-verifiable",
        _ => "unverified",
    };

    /// <summary>A backup's verification in one word, for lists.</summary>
    public static string VerificationOf(Management.V1.Backup backup) => Of(backup.Verification?.State ?? VerificationState.Unspecified);
}
