using System.CommandLine;

namespace Grpc.Backup.Cli;

/// <summary>Options of the commands that talk to grpc-backupd.</summary>
internal static class ServiceOptions
{
    public const string DefaultSocket = "/run/grpc-backup/service.sock";

    public static Option<string> Socket() => new("--socket")
    {
        Description = "grpc-backupd's management socket (default: $GRPC_BACKUP_SOCKET or " + DefaultSocket + ")",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("GRPC_BACKUP_SOCKET") is { Length: > 0 } s ? s : DefaultSocket,
    };

    public static Option<bool> NoWait() => new("--no-wait") { Description = "Print the task id and return at once instead of following the task" };
}
