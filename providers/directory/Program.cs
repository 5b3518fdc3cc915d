using Grpc.Backup.Provider;
using Grpc.Backup.Providers.Directory;

var builder = ProviderHost.CreateBuilder(args);
builder.Services.AddSingleton(DirectoryRepositoryOptions.FromConfiguration(builder.Configuration));
var app = builder.Build();
app.MapBackupProvider();
app.MapGrpcService<DirectoryIdentityService>();
await app.RunAsync();
