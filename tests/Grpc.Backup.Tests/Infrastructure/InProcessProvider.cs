using Grpc.Backup.Protocol;
using Grpc.Backup.Provider;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>
/// A provider built with the SDK inside the test process, serving scripted services on real Unix sockets, so a test
/// can make the provider misbehave in exact ways (wrong major, transient failures, hanging calls).
/// </summary>
internal sealed class InProcessProvider : IAsyncDisposable
{
    private readonly TempDirectory _directory;
    private readonly WebApplication _app;

    private InProcessProvider(TempDirectory directory, WebApplication app, ProviderEndpoint endpoint)
    {
        _directory = directory;
        _app = app;
        Endpoint = endpoint;
    }

    public ProviderEndpoint Endpoint { get; }

    public ScriptedIdentity Identity => _app.Services.GetRequiredService<ScriptedIdentity>();

    public ScriptedBackup Backup => _app.Services.GetRequiredService<ScriptedBackup>();

    public ScriptedRestore Restore => _app.Services.GetRequiredService<ScriptedRestore>();

    public IServiceProvider Services => _app.Services;

    public static async Task<InProcessProvider> StartAsync(Action<ScriptedIdentity>? configureIdentity = null,
        Action<ProviderOptions>? configureOptions = null)
    {
        var directory = new TempDirectory();
        var endpoint = ProviderEndpoint.Parse("unix:" + directory.File("p.sock"));
        var builder = ProviderHost.CreateBuilder(["--listen", endpoint.ToString()], configureOptions);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var identity = new ScriptedIdentity();
        configureIdentity?.Invoke(identity);
        builder.Services.AddSingleton(identity);
        builder.Services.AddSingleton<ScriptedBackup>();
        builder.Services.AddSingleton<ScriptedRestore>();
        var app = builder.Build();
        app.MapBackupProvider();
        app.MapGrpcService<ScriptedIdentity>();
        app.MapGrpcService<ScriptedBackup>();
        app.MapGrpcService<ScriptedRestore>();
        await app.StartAsync();
        return new InProcessProvider(directory, app, endpoint);
    }

    public Task StopAsync() => _app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _directory.Dispose();
    }
}
