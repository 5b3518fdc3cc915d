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
}
