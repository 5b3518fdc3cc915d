using Grpc.Backup.Protocol;
using Grpc.Backup.Provider.Internal;
using Grpc.Backup.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace Grpc.Backup.Provider;

/// <summary>
/// Builds a provider process with the protocol's conventions. A provider is a few lines:
/// <code>
/// var builder = ProviderHost.CreateBuilder(args);
/// builder.Services.AddSingleton&lt;MyRepository&gt;();
/// var app = builder.Build();
/// app.MapBackupProvider();              // health + reflection
/// app.MapGrpcService&lt;MyIdentity&gt;();   // and the services it implements
/// await app.RunAsync();
/// </code>
/// </summary>
public static class ProviderHost
{
    /// <summary>The environment variable naming the endpoint when <c>--listen</c> is not given.</summary>
    public const string ListenEnvironmentVariable = "BACKUP_PROVIDER_LISTEN";

    /// <summary>The environment variable listing allowed peer uids when <c>--allow-uid</c> is not given.</summary>
    public const string AllowedUidsEnvironmentVariable = "BACKUP_PROVIDER_ALLOWED_UIDS";

    /// <summary>The environment variable naming the metrics endpoint when <c>--metrics-listen</c> is not given.</summary>
    public const string MetricsListenEnvironmentVariable = "BACKUP_PROVIDER_METRICS_LISTEN";

    /// <summary>
    /// For <c>--help</c> or <c>-h</c> as the only argument: writes the provider's usage line, its own options and the
    /// options every provider built on the SDK takes, and returns true (the caller exits 0 without starting a server).
    /// </summary>
    public static bool TryWriteHelp(string[] args, string usage, IEnumerable<string> providerOptions)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(providerOptions);
        if (args is not (["--help"] or ["-h"]))
        {
            return false;
        }
        var text = new System.Text.StringBuilder();
        text.Append("usage: ").AppendLine(usage).AppendLine();
        foreach (string option in providerOptions)
        {
            text.Append("  ").AppendLine(option);
        }
        text.AppendLine($"  --listen unix:PATH      the gRPC socket (its fd sideband is PATH.fds); or {ListenEnvironmentVariable}, or systemd")
            .AppendLine("                          socket activation (ListenStream=PATH, ListenSequentialPacket=PATH.fds)")
            .AppendLine($"  --allow-uid UID,...     peers allowed besides root and the provider's own uid; or {AllowedUidsEnvironmentVariable}")
            .AppendLine($"  --metrics-listen ADDR    Prometheus metrics (GET /metrics) on 127.0.0.1:PORT or unix:PATH (0600); or")
            .AppendLine($"                          {MetricsListenEnvironmentVariable}; off by default")
            .AppendLine("Logs are JSON lines on stderr.");
        Console.Out.Write(text.ToString());
        return true;
    }

    /// <summary>Exit status of a provider process: the server stopped cleanly.</summary>
    public const int ExitSuccess = 0;

    /// <summary>Exit status: the provider failed at run time (a socket it could not bind, a crash).</summary>
    public const int ExitFailure = 1;

    /// <summary>Exit status: the command line or environment is wrong (<see cref="ProviderOptionsException"/>).</summary>
    public const int ExitUsage = 2;

    /// <summary>
    /// Runs a provider's main: a wrong option is one line naming it plus a pointer to <c>--help</c> (exit 2); any other
    /// failure is one line (exit 1); a stack trace only with <c>GRPC_BACKUP_DEBUG=1</c>. Every C# provider's
    /// <c>Program.cs</c> runs its body through this.
    /// </summary>
    public static async Task<int> RunAsync(string program, Func<Task<int>> main)
    {
        ArgumentNullException.ThrowIfNull(main);
        try
        {
            return await main().ConfigureAwait(false);
        }
        catch (ProviderOptionsException e)
        {
            await Console.Error.WriteLineAsync($"{program}: {e.Message} (see {program} --help)").ConfigureAwait(false);
            return ExitUsage;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            ProgramFailure.Report(program, e);
            return ExitFailure;
        }
    }

    /// <summary>
    /// Creates a builder that listens on the endpoint from <c>--listen unix:PATH</c>, <c>BACKUP_PROVIDER_LISTEN</c> or
    /// systemd socket activation; binds both sockets with mode 0660; checks peer credentials on both; serves health
    /// and reflection; logs JSON to stderr and never writes to stdout; and cancels in-flight calls at shutdown.
    /// </summary>
    public static WebApplicationBuilder CreateBuilder(string[] args, Action<ProviderOptions>? configure = null)
    {
        // The protocol reserves stdout: anything a library prints by accident goes to stderr instead.
        Console.SetOut(Console.Error);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args });
        var options = new ProviderOptions();
        ApplyCommandLine(builder.Configuration, options);
        configure?.Invoke(options);
        builder.Services.AddSingleton(Options.Create(options));

        builder.Logging.ClearProviders();
        builder.Logging.AddJsonConsole(o =>
        {
            o.IncludeScopes = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            o.UseUtcTimestamp = true;
        });
        builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        // A line per request would drown the provider's own records; failures still show at Warning.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Grpc.AspNetCore", LogLevel.Warning);
        builder.Host.UseSystemd();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.ShutdownTimeout);

        builder.Services.AddSingleton(_ => ListenPlan.Create(options));
        builder.Services.AddSingleton(sp => new FdTransferTable(options.FdTransferTimeToLive, TimeProvider.System,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<FdTransferTable>()));
        builder.Services.AddSingleton<SidebandService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<SidebandService>());
        builder.Services.AddSingleton(sp => new PeerCredentialFilter(options.AllowedPeers,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<PeerCredentialFilter>(), "gRPC"));
        builder.Services.AddSingleton(sp => new ProviderFds(sp.GetRequiredService<FdTransferTable>(),
            sp.GetRequiredService<SidebandService>(), sp.GetRequiredService<IOptions<ProviderOptions>>()));

        MetricsEndpoint? metrics = options.MetricsListen is { Length: > 0 } metricsText ? MetricsEndpoint.Parse(metricsText) : null;
        UnixListeningSocket? metricsSocket = metrics?.Bind();
        if (metrics is not null)
        {
            builder.Services.AddSingleton(metrics);
            builder.Services.AddOpenTelemetry().WithMetrics(m => m
                .AddMeter("System.Runtime", ProcessInstruments.Register())
                .AddPrometheusExporter(o => o.ScrapeEndpointPath = MetricsEndpoint.ScrapePath));
        }
        builder.Services.AddOptions<KestrelServerOptions>()
            .Configure<ListenPlan, PeerCredentialFilter>((kestrel, plan, filter) =>
            {
                kestrel.ListenHandle(plan.DetachGrpcHandle(), listen =>
                {
                    listen.Protocols = HttpProtocols.Http2;
                    listen.Use(filter.Wrap);
                });
                metrics?.Listen(kestrel, metricsSocket);
            });

        builder.Services.AddGrpc(o =>
        {
            o.Interceptors.Add<ProviderCallInterceptor>();
            o.EnableDetailedErrors = false;
        });
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcHealthChecks().AddCheck<LifetimeHealthCheck>("lifetime");
        return builder;
    }

    /// <summary>Maps grpc.health.v1 and server reflection. Call it once, beside the provider's own services.</summary>
    public static IEndpointRouteBuilder MapBackupProvider(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        if (app.ServiceProvider.GetService<MetricsEndpoint>() is not null && app is IApplicationBuilder pipeline)
        {
            MetricsEndpoint.MapScrape(pipeline);
        }
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        return app;
    }

    private static void ApplyCommandLine(ConfigurationManager configuration, ProviderOptions options)
    {
        string? listen = configuration["listen"] ?? Environment.GetEnvironmentVariable(ListenEnvironmentVariable);
        if (!string.IsNullOrEmpty(listen))
        {
            options.Endpoint = ProviderEndpoint.Parse(listen);
        }
        string? metrics = configuration["metrics-listen"] ?? Environment.GetEnvironmentVariable(MetricsListenEnvironmentVariable);
        if (!string.IsNullOrEmpty(metrics))
        {
            options.MetricsListen = metrics;
        }
        string? uids = configuration["allow-uid"] ?? Environment.GetEnvironmentVariable(AllowedUidsEnvironmentVariable);
        if (!string.IsNullOrEmpty(uids))
        {
            options.AllowedPeers = PeerCredentialPolicy.Parse(uids);
        }
    }
}
