using Grpc.Backup.Service.Internal.Api;
using Grpc.Backup.Service.Internal.Catalog;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Service.Internal.Engine;
using Grpc.Backup.Service.Internal.Recovery;
using Grpc.Backup.Service.Internal.Scheduling;
using Grpc.Backup.Service.Internal.Tasks;
using Grpc.Backup.Service.Internal.Telemetry;
using Grpc.Backup.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Grpc.Backup.Service.Internal;

/// <summary>
/// Start-up in the order that keeps the host safe: load the whole configuration (refuse to start on any error),
/// open the catalog, recover what a crash left (before any new job can touch a guest), then serve the management
/// socket and start the scheduler. On SIGTERM running tasks are cancelled and their teardown awaited.
/// </summary>
internal static class BackupService
{
    public const int ExitConfig = 78;

    public static async Task<int> RunAsync(ServiceOptions options)
    {
        var paths = new ServicePaths(options.ConfigDirectory, options.StateDirectory, options.RuntimeDirectory, options.SocketPath, options.LockDirectory);
        ServiceConfiguration config;
        try
        {
            config = ServiceConfiguration.Load(paths.ConfigDirectory, paths.StateDirectory);
        }
        catch (ConfigurationErrorsException e)
        {
            foreach (var error in e.Errors)
            {
                await Console.Error.WriteLineAsync($"grpc-backupd: {error.Message}");
            }
            if (e.Errors.Count > 1)
            {
                await Console.Error.WriteLineAsync($"grpc-backupd: configuration refused ({e.Errors.Count} error(s))");
            }
            return ExitConfig;
        }
        if (options.CheckConfig)
        {
            Console.WriteLine($"configuration OK: {config.Guests.Count} guest(s), {config.Storages.Count} storage(s), {config.Jobs.Count} job(s)");
            return 0;
        }

        paths.CreateDirectories();
        using var catalog = new CatalogDatabase(paths.CatalogPath);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ";
            o.UseUtcTimestamp = true;
        });
        builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Grpc", LogLevel.Warning);
        builder.Logging.AddFilter("System.Net.Http", LogLevel.Warning);
        builder.Logging.AddFilter("Grpc.Backup", LogLevel.Information);
        builder.Host.UseSystemd();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMinutes(2));

        builder.Services.AddSingleton(config);
        builder.Services.AddSingleton(paths);
        builder.Services.AddSingleton(catalog);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<TaskRegistry>();
        builder.Services.AddSingleton<JobEngine>();
        if (config.Host.Cluster is not null)
        {
            // Without cluster-endpoints nothing of the cluster exists: JobEngine gets no membership and runs alone.
            builder.Services.AddSingleton<Cluster.ClusterMembership>();
            builder.Services.AddHostedService(services => services.GetRequiredService<Cluster.ClusterMembership>());
            builder.Services.AddHostedService<ClusterScheduler>();
        }
        builder.Services.AddSingleton<StateRetention>();
        builder.Services.AddHostedService(services => services.GetRequiredService<StateRetention>());
        builder.Services.AddSingleton<Notifications.JobNotifier>(_ => new Notifications.JobNotifier());
        // The management socket is root's only.
        builder.Services.AddSingleton(sp => new Provider.PeerCredentialFilter(new PeerCredentialPolicy([0]),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<Provider.PeerCredentialFilter>(), "management"));
        builder.Services.AddHostedService<JobScheduler>();
        builder.Services.AddGrpc(o => o.EnableDetailedErrors = false);
        builder.Services.AddServiceTelemetry(config.Host);

        UnixListeningSocket socket = UnixListeningSocket.Bind(paths.SocketPath, System.Net.Sockets.SocketType.Stream,
            UnixFileMode.UserRead | UnixFileMode.UserWrite);
        UnixListeningSocket? metricsSocket = config.Host.MetricsListen is { } metricsAddress ? MetricsListener.BindUnixSocket(metricsAddress) : null;
        builder.Services.AddOptions<KestrelServerOptions>().Configure<Provider.PeerCredentialFilter>((kestrel, filter) =>
        {
            KestrelUnixSocket.Listen(kestrel, socket, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                listen.Use(filter.Wrap);
            });
            if (config.Host.MetricsListen is { } metrics)
            {
                MetricsListener.Listen(kestrel, metrics, metricsSocket);
            }
        });

        await using WebApplication app = builder.Build();
        ILogger logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Grpc.Backup.Service");
        int recovered = await new CrashRecovery(catalog, config, paths.LockDirectory, app.Services.GetRequiredService<ILoggerFactory>()).RecoverAsync(CancellationToken.None);
        if (recovered > 0)
        {
            logger.LogWarning("Recovered {Count} backup(s) interrupted by a crash", recovered);
        }
        if (config.Host.MetricsListen is not null)
        {
            app.UseOpenTelemetryPrometheusScrapingEndpoint(MetricsListener.IsScrape);
            // Anything else on the metrics listener ends here: it never reaches the management API.
            app.Use((context, next) =>
            {
                if (MetricsListener.IsMetricsConnection(context))
                {
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    return Task.CompletedTask;
                }
                return next(context);
            });
        }
        app.MapGrpcService<ManagementService>();
        TaskRegistry tasks = app.Services.GetRequiredService<TaskRegistry>();
        app.Lifetime.ApplicationStopping.Register(() =>
        {
            foreach (ServiceTask task in tasks.All.Where(t => !t.IsFinished))
            {
                task.Cancel();
            }
        });
        if (config.Host.MetricsListen is { } listen)
        {
            logger.LogInformation("Prometheus metrics at http://{Listen}{Path}", listen, MetricsListener.ScrapePath);
        }
        logger.LogInformation("grpc-backupd serving {Socket}: {Guests} guest(s), {Storages} storage(s), {Jobs} job(s), {Max} backup(s) at once",
            paths.SocketPath, config.Guests.Count, config.Storages.Count, config.Jobs.Count, config.Host.MaxBackups);
        try
        {
            await app.StartAsync();
            await app.WaitForShutdownAsync();
            // Cancelled tasks finish their teardown (and JobCleanup) before the process exits.
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (tasks.All.Any(t => !t.IsFinished) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
        finally
        {
            socket.DeleteFileIfOurs();
            metricsSocket?.DeleteFileIfOurs();
        }
        return 0;
    }
}
