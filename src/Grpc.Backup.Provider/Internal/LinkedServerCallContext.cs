using Grpc.AspNetCore.Server;
using Grpc.Core;

namespace Grpc.Backup.Provider.Internal;

/// <summary>
/// A call context whose cancellation token also fires when the provider shuts down, so that a service method sees
/// one token for both "the host cancelled" and "we are stopping". Everything else delegates to the real context.
/// </summary>
internal sealed class LinkedServerCallContext : ServerCallContext
{
    // grpc-dotnet's GetHttpContext() falls back to this user-state key for contexts it did not create; its service
    // activator needs the HttpContext to resolve the service instance.
    private const string HttpContextKey = "__HttpContext";

    private readonly ServerCallContext _inner;
    private readonly CancellationToken _cancellationToken;

    public LinkedServerCallContext(ServerCallContext inner, CancellationToken cancellationToken)
    {
        _inner = inner;
        _cancellationToken = cancellationToken;
        inner.UserState[HttpContextKey] = inner.GetHttpContext();
    }

    protected override string MethodCore => _inner.Method;
    protected override string HostCore => _inner.Host;
    protected override string PeerCore => _inner.Peer;
    protected override DateTime DeadlineCore => _inner.Deadline;
    protected override Metadata RequestHeadersCore => _inner.RequestHeaders;
    protected override CancellationToken CancellationTokenCore => _cancellationToken;
    protected override Metadata ResponseTrailersCore => _inner.ResponseTrailers;

    protected override Status StatusCore
    {
        get => _inner.Status;
        set => _inner.Status = value;
    }

    protected override WriteOptions? WriteOptionsCore
    {
        get => _inner.WriteOptions;
        set => _inner.WriteOptions = value;
    }

    protected override AuthContext AuthContextCore => _inner.AuthContext;

    // GetHttpContext() and other extensions find their state here.
    protected override IDictionary<object, object> UserStateCore => _inner.UserState;

    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) =>
        _inner.CreatePropagationToken(options);

    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) =>
        _inner.WriteResponseHeadersAsync(responseHeaders);
}
