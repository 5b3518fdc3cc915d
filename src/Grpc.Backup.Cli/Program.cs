using System.CommandLine;
using Grpc.Backup.Cli;

Command providers = ProvidersCommand.Create();
ServiceCommands.AddProvidersList(providers);
var root = new RootCommand("""
    grpc-backup: back up and restore VMs and containers through backup providers.

    Most commands talk to the backup service grpc-backupd on its root-only socket (--socket, $GRPC_BACKUP_SOCKET).
    'backup' and 'restore' with --endpoint, and 'files', work directly against one provider, without the service.
    Exit status: 0 success, 1 failed, 2 usage, 3 provider refused, 4 provider unreachable, 5 service unreachable,
    6 cancelled, 7 not found, 8 job already running, 78 definitions refused (cluster apply). 'verify' exits 1 when the backup failed verification.
    Failures are one line on stderr; GRPC_BACKUP_DEBUG=1 adds the stack trace.
    """)
{
    BackupCommand.Create(),
    RestoreCommand.Create(),
    FilesCommand.Create(),
    ServiceCommands.List(),
    ServiceCommands.Show(),
    VerifyCommand.Create(),
    ServiceCommands.Prune(),
    ServiceCommands.Jobs(),
    providers,
    ServiceCommands.Status(),
    ServiceCommands.Cancel(),
    ServiceCommands.Watch(),
    ClusterCommand.Create(),
};
ParseResult parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    // One line naming what was wrong, and where the usage is: never the whole help text.
    await Console.Error.WriteLineAsync($"grpc-backup: {parsed.Errors[0].Message} (see 'grpc-backup {parsed.CommandResult.Command.Name} --help')"
        .Replace("grpc-backup grpc-backup", "grpc-backup", StringComparison.Ordinal));
    return ExitCodes.Usage;
}
try
{
    return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e)
{
    Console.Error.WriteLine($"grpc-backup: {CliFailure.Describe(e)}");
    if (Grpc.Backup.Protocol.ProgramFailure.StackTraces)
    {
        Console.Error.WriteLine(e.ToString());
    }
    return CliFailure.ExitCodeOf(e);
}
