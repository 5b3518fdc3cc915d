using Grpc.Backup.Provider;
using Grpc.Backup.Providers.Borg;
using Grpc.Backup.Providers.Borg.Internal;

if (ProviderHost.TryWriteHelp(args, "grpc-backup-provider-borg --repository PATH|ssh://USER@HOST[:PORT]/PATH [options]",
    ["--repository REPO       the borg repository; or " + BorgProviderOptions.RepositoryVariable,
     "--state-directory DIR   catalog and borg's own files (default: systemd's StateDirectory=)",
     "--passphrase-file PATH  the repository passphrase, read by borg itself (e.g. ${CREDENTIALS_DIRECTORY}/passphrase)",
     "--ssh-key-file PATH, --ssh-known-hosts PATH, --break-stale-locks true|false, --lock-wait SECONDS",
     "--compression SPEC, --vm-mechanism nbd|file-handle, --scratch-directory DIR, --copy-request-size BYTES, --copy-depth N"]))
{
    return 0;
}

return await ProviderHost.RunAsync("grpc-backup-provider-borg", async () =>
{
    var builder = ProviderHost.CreateBuilder(args);
    builder.Services.AddSingleton(BorgProviderOptions.FromConfiguration(builder.Configuration));
    builder.Services.AddSingleton(TimeProvider.System);
    builder.Services.AddSingleton<BorgCli>();
    builder.Services.AddSingleton<RepositoryLock>();
    builder.Services.AddSingleton<BorgRepository>();
    builder.Services.AddSingleton<Catalog>();
    builder.Services.AddSingleton<GuestLocks>();
    builder.Services.AddSingleton<BackupSessionTable>();
    builder.Services.AddSingleton<RestoreSessionTable>();
    builder.Services.AddSingleton<BackupFinisher>();
    builder.Services.AddSingleton<VmBackupRun>();
    builder.Services.AddSingleton<ContainerBackupRun>();
    var app = builder.Build();
    app.MapBackupProvider();
    app.MapGrpcService<BorgIdentityService>();
    app.MapGrpcService<BorgBackupService>();
    app.MapGrpcService<BorgRestoreService>();
    app.MapGrpcService<BorgRepositoryService>();
    await app.RunAsync();
    return 0;
});
