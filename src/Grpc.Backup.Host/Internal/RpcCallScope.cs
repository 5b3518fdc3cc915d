using System.Diagnostics;
using Grpc.Core;

namespace Grpc.Backup.Host.Internal;

/// <summary>
/// One provider RPC as telemetry sees it: its span and its duration, ended exactly once with the call's status,
/// whichever of completion, failure or disposal comes first.
/// </summary>
internal sealed class RpcCallScope
{
    private readonly Activity? _activity;
    private readonly Activity? _callersActivity;
    private readonly TagList _tags;
    private readonly long _started = Stopwatch.GetTimestamp();
    private int _ended;

    private RpcCallScope(Activity? activity, Activity? callersActivity, TagList tags)
    {
        _activity = activity;
        _callersActivity = callersActivity;
        _tags = tags;
    }

    /// <summary>Starts the call's span as a child of the caller's current span (and current while the call starts).</summary>
    public static RpcCallScope Begin(IMethod method, string endpoint)
    {
        var tags = new TagList
        {
            { "rpc.system", "grpc" },
            { "rpc.service", method.ServiceName },
            { "rpc.method", method.Name },
            { "server.address", endpoint },
        };
        Activity? callers = Activity.Current;
        Activity? activity = RpcInstruments.Source.StartActivity(method.FullName.TrimStart('/'), ActivityKind.Client, default(ActivityContext), tags);
        return new RpcCallScope(activity, callers, tags);
    }

    /// <summary>
    /// Gives the caller its own current span back once the call has started: the call object outlives the
    /// interceptor, and the caller's next calls must be siblings of this one, not its children.
    /// </summary>
    public void Detach() => Activity.Current = _callersActivity;

    public void End(Exception? error)
    {
        if (Interlocked.Exchange(ref _ended, 1) != 0)
        {
            return;
        }
        StatusCode code = error switch
        {
            null => StatusCode.OK,
            RpcException rpc => rpc.StatusCode,
            OperationCanceledException => StatusCode.Cancelled,
            _ => StatusCode.Unknown,
        };
        TagList tags = _tags;
        tags.Add("rpc.grpc.status_code", (int)code);
        RpcInstruments.CallDuration.Record(Stopwatch.GetElapsedTime(_started).TotalSeconds, tags);
        if (_activity is not null)
        {
            _activity.SetTag("rpc.grpc.status_code", (int)code);
            if (code != StatusCode.OK)
            {
                _activity.SetStatus(ActivityStatusCode.Error, error is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : code.ToString());
            }
            _activity.Stop();
        }
    }
}
