using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Host;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Orchestrator;

/// <summary>
/// One backup job against one provider, in the contract's order (backup.proto): JobInit, the guests, and JobCleanup
/// on every path, also when JobInit itself failed (the provider may have done part of it; JobCleanup of a job it does
/// not know is OK by contract). The service's job engine and the CLI's direct mode both run jobs through this.
/// </summary>
public sealed class JobSession : IAsyncDisposable
{
    /// <summary>JobCleanup's own deadline: it runs after cancellation too, so it cannot borrow the job's token.</summary>
    public static readonly TimeSpan CleanupTimeout = ProviderDeadlines.Cleanup;

    private readonly ProviderConnection _provider;
    private readonly Action<string> _warn;
    private bool _ended;

    private JobSession(ProviderConnection provider, string jobId, Action<string> warn)
    {
        _provider = provider;
        JobId = jobId;
        _warn = warn;
    }

    public string JobId { get; }

    /// <summary>
    /// Sends JobInit with <paramref name="options"/> (the storage's options). If it fails, JobCleanup(success=false)
    /// is sent before the failure is rethrown.
    /// </summary>
    /// <param name="warn">Where a failed JobCleanup is reported (it never fails the job by itself).</param>
    public static async Task<JobSession> StartAsync(ProviderConnection provider, string jobId, IReadOnlyDictionary<string, string>? options,
        Action<string> warn, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(provider);
        ArgumentNullException.ThrowIfNull(warn);
        var session = new JobSession(provider, jobId, warn);
        var init = new JobInitRequest { JobId = jobId, StartTime = Timestamp.FromDateTime(DateTime.UtcNow) };
        foreach (var (key, value) in options ?? new Dictionary<string, string>())
        {
            init.Options[key] = value;
        }
        try
        {
            await provider.Backup.JobInitAsync(init, cancellationToken: cancellationToken);
        }
        catch (Exception e)
        {
            await session.EndAsync(false, "JobInit failed: " + Protocol.ProgramFailure.Describe(e));
            throw;
        }
        return session;
    }

    /// <summary>Sends JobCleanup once, under its own deadline; later calls do nothing.</summary>
    public async Task EndAsync(bool success, string error)
    {
        if (_ended)
        {
            return;
        }
        _ended = true;
        using var timeout = new CancellationTokenSource(CleanupTimeout);
        try
        {
            await _provider.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = JobId, Success = success, Error = error ?? "" },
                cancellationToken: timeout.Token);
        }
        catch (RpcException e)
        {
            _warn($"JobCleanup failed: {Protocol.ProgramFailure.Describe(e)}");
        }
        catch (OperationCanceledException)
        {
            _warn($"JobCleanup did not answer within {CleanupTimeout.TotalSeconds:F0} s");
        }
    }

    /// <summary>A session left without an outcome ends as failed.</summary>
    public async ValueTask DisposeAsync() => await EndAsync(false, "the job ended without an outcome");
}
