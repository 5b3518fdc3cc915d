using System.CommandLine;
using Google.Protobuf;
using Grpc.Backup.Management.V1;

namespace Grpc.Backup.Cli;

/// <summary>
/// <c>grpc-backup verify ARCHIVE --storage S</c> or <c>--latest GUEST</c>: the service restores the backup to a scratch
/// target, compares it with the checksums (or the container's file manifest) recorded at backup time, records the
/// result in the catalog and removes the scratch. The command follows the task and prints the recorded result; the
/// exit status is 0 when verified, 1 when it failed verification.
/// </summary>
internal static class VerifyCommand
{
    public static Command Create()
    {
        var socket = ServiceOptions.Socket();
        var noWait = ServiceOptions.NoWait();
        var json = CommonOptions.Json();
        var storage = new Option<string>("--storage") { Description = "The configured storage that holds the backup", Required = true };
        var latest = new Option<string>("--latest") { Description = "Verify this guest's newest backup in the catalog" };
        var archive = new Argument<string>("archive") { Description = "The archive to verify (or --latest GUEST)", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("verify", "Restore a backup to a scratch target and compare it with what was recorded at backup time")
        {
            archive, storage, latest, socket, noWait, json,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            string name = result.GetValue(archive) ?? "";
            string guest = result.GetValue(latest) ?? "";
            if ((name.Length > 0) == (guest.Length > 0))
            {
                await Console.Error.WriteLineAsync("grpc-backup: give an archive name or --latest GUEST (not both)");
                return ExitCodes.Usage;
            }
            return await ServiceClient.RunAsync(result.GetValue(socket)!, async client =>
            {
                string storageName = result.GetValue(storage)!;
                var started = await client.Management.VerifyBackupAsync(new VerifyBackupRequest
                {
                    Storage = storageName,
                    ArchiveName = name,
                    LatestGuestId = guest,
                }, cancellationToken: cancellationToken);
                if (result.GetValue(noWait))
                {
                    Console.WriteLine(started.TaskId);
                    return ExitCodes.Success;
                }
                int exit = await TaskFollower.FollowAsync(client, started.TaskId, result.GetValue(json), cancellationToken);
                var backups = await client.Management.ListBackupsAsync(new ListBackupsRequest { Storage = storageName, GuestId = guest },
                    cancellationToken: cancellationToken);
                Management.V1.Backup? verified = backups.Backups.FirstOrDefault(b => b.Verification?.TaskId == started.TaskId);
                if (verified is not null)
                {
                    Console.WriteLine(result.GetValue(json)
                        ? JsonFormatter.Default.Format(verified)
                        : $"{verified.ArchiveName}: {Names.Of(verified.Verification.State)}: {verified.Verification.Detail}");
                }
                return exit;
            });
        });
        return command;
    }
}
