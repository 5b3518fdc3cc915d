using Grpc.Backup.Provider;
using Grpc.Backup.Providers.Directory;
using Grpc.Backup.Providers.Directory.Internal;

if (args is [ContainerWorkerMain.Command])
{
    // Run by the host inside a container's user namespace: no server, no configuration, just the archive.
    return await ContainerWorkerMain.RunAsync();
}

if (ProviderHost.TryWriteHelp(args, "grpc-backup-provider-directory --repository PATH [options]",
    ["--repository PATH       the backup directory; or " + DirectoryRepositoryOptions.EnvironmentVariable,
     "--vm-mechanism nbd|file-handle, --ct-mechanism directory|tar-stream",
     "--runtime-directory DIR  private qemu-nbd sockets (default: systemd's RuntimeDirectory=, else the temp directory)",
     "--qemu-img PATH, --qemu-nbd PATH, --copy-request-size BYTES, --copy-depth N",
     "--volume-digest yes|no   report each volume's chunk digest for verification (default yes; older name --content-sha256)"]))
{
    return 0;
}

return await ProviderHost.RunAsync("grpc-backup-provider-directory", async () =>
{
    var builder = ProviderHost.CreateBuilder(args);
    builder.Services.AddSingleton(DirectoryRepositoryOptions.FromConfiguration(builder.Configuration));
    builder.Services.AddSingleton(TimeProvider.System);
    builder.Services.AddSingleton<ArchiveStore>();
    builder.Services.AddSingleton<GuestLocks>();
    builder.Services.AddSingleton<QemuTools>();
    builder.Services.AddSingleton<BackupSessionTable>();
    builder.Services.AddSingleton<FencingLedger>();
    builder.Services.AddSingleton<RestoreSessionTable>();
    builder.Services.AddSingleton<BackupCoordinator>();
    builder.Services.AddSingleton<ArchiveDeleter>();
    builder.Services.AddSingleton<VmBackupRun>();
    builder.Services.AddSingleton<ContainerBackupRun>();
    var app = builder.Build();
    app.MapBackupProvider();
    app.MapGrpcService<DirectoryIdentityService>();
    app.MapGrpcService<DirectoryBackupService>();
    app.MapGrpcService<DirectoryRestoreService>();
    app.MapGrpcService<DirectoryRepositoryService>();
    await app.RunAsync();
    return 0;
});
