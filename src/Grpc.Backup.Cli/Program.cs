using System.CommandLine;
using Grpc.Backup.Cli;

var root = new RootCommand("grpc-backup: back up and restore VMs and containers through backup providers")
{
    ProvidersCommand.Create(),
    BackupCommand.Create(),
    RestoreCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
