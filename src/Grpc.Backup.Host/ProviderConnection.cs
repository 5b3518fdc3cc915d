using Grpc.Backup.Host.Internal;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly.CircuitBreaker;

namespace Grpc.Backup.Host;

/// <summary>
/// The host's connection to one provider: created by <see cref="ConnectAsync"/>, which runs the handshake, and
/// offering typed clients whose unary calls carry deadlines, retries for idempotent RPCs only, and a circuit breaker
/// for this provider. The fd sideband is opened on first use.
/// </summary>
public sealed partial class ProviderConnection : IAsyncDisposable
{
    /// <summary>The largest gRPC message the host accepts from a provider: a full ListBackups page (1000 entries with 4 KiB notes) fits.</summary>
    public const int MaxProviderMessageBytes = 8 * 1024 * 1024;

    private readonly GrpcChannel _channel;
    private readonly ProviderResilience _resilience;
    private readonly ProviderConnectionOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;

    private ProviderConnection(ProviderEndpoint endpoint, ProviderConnectionOptions options, ILoggerFactory loggerFactory,
        TimeProvider timeProvider)
    {
        Endpoint = endpoint;
        _options = options;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<ProviderConnection>();
        _channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            // The authority must be "localhost": Kestrel and others reject a socket path as :authority.
            HttpHandler = UnixSocketHttpHandler.Create(endpoint.SocketPath),
            DisposeHttpClient = true,
            LoggerFactory = loggerFactory,
            // The largest message a provider may send (a ListBackups page, a BackupVm event): the contract keeps
            // bulk data out of messages, so anything near this is hostile (protos/README.md, "Limits").
            MaxReceiveMessageSize = MaxProviderMessageBytes,
        });
        _resilience = new ProviderResilience(endpoint.ToString(), options, timeProvider);
        // The first interceptor is the outermost: one span per logical call, and one deadline spans all retries.
        CallInvoker invoker = _channel.CreateCallInvoker().Intercept(
            new TelemetryInterceptor(endpoint.ToString()),
            new DeadlineInterceptor(options.UnaryDeadline, timeProvider),
            new ResilienceInterceptor(_resilience));
        Identity = new Identity.IdentityClient(invoker);
        Backup = new Protocol.V1.Backup.BackupClient(invoker);
        Restore = new Protocol.V1.Restore.RestoreClient(invoker);
        Repository = new Repository.RepositoryClient(invoker);
        Health = new Grpc.Health.V1.Health.HealthClient(invoker);
        _fdInbox = new Transport.FdTransferTable(options.FdTransferTimeToLive, timeProvider,
            loggerFactory.CreateLogger<Transport.FdTransferTable>());
    }

    /// <summary>The provider's endpoint.</summary>
    public ProviderEndpoint Endpoint { get; }

    /// <summary>What the provider said about itself in the handshake.</summary>
    public GetProviderInfoResponse Info { get; private set; } = new();

    /// <summary>The protocol major both sides speak.</summary>
    public uint NegotiatedMajor { get; private set; }

    /// <summary>The provider's capabilities (fixed per build).</summary>
    public Capabilities Capabilities => Info.Capabilities;

    public Identity.IdentityClient Identity { get; }

    public Protocol.V1.Backup.BackupClient Backup { get; }

    public Protocol.V1.Restore.RestoreClient Restore { get; }

    public Repository.RepositoryClient Repository { get; }

    public Grpc.Health.V1.Health.HealthClient Health { get; }

    /// <summary>The state of this provider's circuit breaker.</summary>
    public CircuitState CircuitState => _resilience.CircuitState;

    /// <summary>
    /// Connects to the provider at <paramref name="endpoint"/> and runs the handshake: GetProviderInfo (the provider
    /// must speak one of <see cref="ProviderConnectionOptions.SupportedMajors"/>), Probe until READY, then the health
    /// check. Throws <see cref="ProviderHandshakeException"/> when the provider cannot be used.
    /// </summary>
    public static async Task<ProviderConnection> ConnectAsync(ProviderEndpoint endpoint, ProviderConnectionOptions? options = null,
        ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        options ??= new ProviderConnectionOptions();
        var connection = new ProviderConnection(endpoint, options, loggerFactory ?? NullLoggerFactory.Instance, options.TimeProvider);
        try
        {
            await connection.HandshakeAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await DisposeFdsAsync();
        _channel.Dispose();
    }
}
