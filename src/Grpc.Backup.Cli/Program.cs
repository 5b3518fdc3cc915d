using System.CommandLine;
using Grpc.Backup.Cli;

Command providers = ProvidersCommand.Create();
ServiceCommands.AddProvidersList(providers);
var root = new RootCommand("""
    grpc-backup: back up and restore VMs and containers through backup providers.

    Most commands talk to the backup service grpc-backupd on its root-only socket (--socket, $GRPC_BACKUP_SOCKET).
    'backup' and 'restore' with --endpoint work directly against one provider, without the service.
    Exit status: 0 success, 1 failed, 2 usage, 3 provider refused, 4 provider unreachable, 5 service unreachable,
    6 cancelled, 7 not found, 8 job already running. 'verify' exits 1 when the backup failed verification.
    """)
{
    BackupCommand.Create(),
    RestoreCommand.Create(),
    ServiceCommands.List(),
    ServiceCommands.Show(),
    VerifyCommand.Create(),
    ServiceCommands.Prune(),
    ServiceCommands.Jobs(),
    providers,
    ServiceCommands.Status(),
    ServiceCommands.Cancel(),
    ServiceCommands.Watch(),
};
return await root.Parse(args).InvokeAsync();
