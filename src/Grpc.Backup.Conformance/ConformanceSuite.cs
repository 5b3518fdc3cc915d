using System.Diagnostics;
using Grpc.Backup.Conformance.Internal;
using Grpc.Backup.Host;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Conformance;

/// <summary>
/// Checks one provider against the contract, playing the host. The checks run in the lifecycle order of
/// protos/README.md; each is named <c>area.what</c>, and checks that need state an earlier one built (an archive, a
/// backup id) are skipped with the reason when it is missing. Everything the suite creates is removed at the end:
/// the scratch guest and directory, and its archives (deleted through the provider).
/// </summary>
public sealed partial class ConformanceSuite : IAsyncDisposable
{
    private readonly ConformanceOptions _options;
    private readonly List<CheckResult> _results = [];
    private readonly string _scratch;
    // A guest id of our own, so nothing the suite stores or prunes can touch a real guest's backups.
    private readonly string _guestId = "conformance-" + Guid.NewGuid().ToString("N")[..8];
    private readonly string _jobId = Guid.NewGuid().ToString();
    private readonly List<string> _archives = [];
    private ProviderConnection? _connection;

    public ConformanceSuite(ConformanceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        string parent = options.ScratchParent ?? Path.GetTempPath();
        if (!Directory.Exists(parent))
        {
            throw new DirectoryNotFoundException($"{parent} does not exist");
        }
        // Traversable but not listable (0711): the container's root must reach its view below it; everything the
        // host keeps private (snapshot sockets, fleecing images, disks) is in 0700 subdirectories (PrivateDirectory).
        _scratch = Path.GetFullPath(Path.Combine(parent, "grpc-backup-conformance-" + Guid.NewGuid().ToString("N")[..12]));
        Directory.CreateDirectory(_scratch, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
    }

    public IReadOnlyList<CheckResult> Results => _results;

    private ProviderConnection Connection => _connection ?? throw new CheckSkippedException("no connection (identity.handshake did not pass)");

    private Capabilities Capabilities => Connection.Capabilities;

    /// <summary>Runs every check in order and returns the results (also in <see cref="Results"/>).</summary>
    public async Task<IReadOnlyList<CheckResult>> RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            await RunIdentityChecksAsync(cancellationToken);
            await RunJobChecksAsync(cancellationToken);
            await RunFdChecksAsync(cancellationToken);
            await RunRestoreErrorChecksAsync(cancellationToken);
            await RunRepositoryErrorChecksAsync(cancellationToken);
            await RunVmRoundTripAsync(cancellationToken);
            await RunContainerRoundTripAsync(cancellationToken);
        }
        finally
        {
            // Also after Ctrl-C: what the suite stored is removed, within its own time limit.
            using var cleanupTimeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            await RunCleanupChecksAsync(cleanupTimeout.Token);
        }
        return _results;
    }

    /// <summary>Runs one check: records pass, fail (with the provider's answer) or skip (with the reason).</summary>
    private async Task<bool> CheckAsync(string name, Func<CancellationToken, Task> body, CancellationToken cancellationToken)
    {
        if (_options.Only is { } only && !only.IsMatch(name))
        {
            return false;
        }
        var watch = Stopwatch.StartNew();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.CheckTimeout);
        CheckResult result;
        try
        {
            await body(timeout.Token);
            result = new CheckResult(name, CheckOutcome.Passed, "", watch.Elapsed);
        }
        catch (CheckSkippedException e)
        {
            result = new CheckResult(name, CheckOutcome.Skipped, e.Message, watch.Elapsed);
        }
        catch (CheckFailedException e)
        {
            result = new CheckResult(name, CheckOutcome.Failed, e.Message, watch.Elapsed);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            result = new CheckResult(name, CheckOutcome.Failed, $"did not finish within {_options.CheckTimeout.TotalSeconds:0} s", watch.Elapsed);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            result = new CheckResult(name, CheckOutcome.Failed, $"did not finish within {_options.CheckTimeout.TotalSeconds:0} s", watch.Elapsed);
        }
        catch (RpcException e)
        {
            result = new CheckResult(name, CheckOutcome.Failed, "unexpected " + Expect.Describe(e), watch.Elapsed);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            result = new CheckResult(name, CheckOutcome.Failed, $"{e.GetType().Name}: {e.Message}", watch.Elapsed);
        }
        _results.Add(result);
        return result.Outcome == CheckOutcome.Passed;
    }

    /// <summary>A new 0700 directory in the scratch directory.</summary>
    private string PrivateDirectory(string name) =>
        Directory.CreateDirectory(Path.Combine(_scratch, name), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute).FullName;

    private bool Advertises(RepositoryOperation operation) => Capabilities.RepositoryOperations.Contains(operation);

    private static void RequireState(object? state, string check) =>
        Expect.Requires(state is not null, $"needs {check}, which did not pass or was not selected");

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }
        try
        {
            Directory.Delete(_scratch, recursive: true);
        }
        catch (IOException)
        {
            // A FUSE view still being detached; the scratch guest already unmounted it lazily.
        }
    }
}
