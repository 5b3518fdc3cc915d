using Grpc.Backup.Service;
using Grpc.Backup.Service.Internal;

// grpc-backupd exit codes: 0 clean stop, 1 failed at run time (one line on stderr; GRPC_BACKUP_DEBUG=1 adds the stack),
// 2 usage, 78 (EX_CONFIG) invalid configuration.
ServiceOptions options;
try
{
    options = ServiceOptions.Parse(args);
}
catch (ArgumentException e)
{
    await Console.Error.WriteLineAsync($"grpc-backupd: {e.Message}");
    return 2;
}
if (options.Help)
{
    Console.WriteLine($"usage: {ServiceOptions.Usage}");
    Console.WriteLine("  defaults: --config /etc/grpc-backup --state /var/lib/grpc-backup --runtime /run/grpc-backup/work --socket " + ServiceOptions.DefaultSocket);
    return 0;
}
try
{
    return await BackupService.RunAsync(options);
}
catch (Exception e) when (e is not OutOfMemoryException)
{
    Grpc.Backup.Protocol.ProgramFailure.Report("grpc-backupd", e);
    return 1;
}
