using System.Diagnostics;
using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Host;
using Grpc.Backup.Management.V1;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Service.Internal.Catalog;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Service.Internal.Notifications;
using Grpc.Backup.Service.Internal.Tasks;
using Grpc.Backup.Service.Internal.Telemetry;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>
/// Runs backup jobs in the contract's order (protos/README.md, after vzdump's <c>exec_backup</c>): connect, JobInit,
/// the job-start hook; per guest, once it holds its guest lock, a storage slot and a host slot: backup-start hook,
/// journal entry, the runner (BackupInit … teardown, log hand-off, BackupCleanup on every path), notes, retention,
/// catalog, backup-end (or backup-abort) hook, log-end hook; then JobCleanup (always, even when JobInit failed) and
/// the job-end (or job-abort) hook.
/// </summary>
/// <remarks>
/// In a cluster (<paramref name="cluster"/> set) each guest also takes a cluster slot (per host and per storage, in
/// etcd) after its local gates, and runs in a provider job of its own whose JobInit carries that slot's fencing token:
/// a token belongs to one slot, and a run's guests hold different slots at different times.
/// </remarks>
internal sealed partial class JobEngine(ServiceConfiguration config, ServicePaths paths, CatalogDatabase catalog, TaskRegistry tasks,
    JobNotifier notifier, StateRetention retention, ILoggerFactory loggerFactory, Cluster.ClusterMembership? cluster = null)
{
    private readonly ILogger _logger = loggerFactory.CreateLogger<JobEngine>();
    private readonly KeyedGate _guestLocks = new();
    private readonly KeyedGate _storageSlots = new();

    public BackupSlots Slots { get; } = new(config.Host.MaxBackups);

    /// <summary>The configuration jobs run with: this host's, plus in a cluster the definitions applied to it (they change while the service runs).</summary>
    public ServiceConfiguration Config => cluster?.Current ?? config;

    /// <summary>Starts a run of a configured job (backup or verify) with <paramref name="config"/>, one snapshot of it.</summary>
    public ServiceTask StartJob(JobConfig job, ServiceConfiguration config) => job.Kind == JobKind.Verify
        ? StartVerify(VerifyPlan.FromJob(job, config))
        : Start("job", BackupPlan.FromJob(job, config));

    /// <summary>Registers a task for the plan and runs it in the background; returns at once.</summary>
    public ServiceTask Start(string kind, BackupPlan plan)
    {
        ServiceTask task = tasks.Add(new ServiceTask(kind, plan.JobName, plan.Storage.Name));
        _ = Task.Run(() => RunAsync(task, plan));
        return task;
    }

    public async Task RunAsync(ServiceTask task, BackupPlan plan)
    {
        string jobId = Guid.NewGuid().ToString();
        // Each run is its own trace: not a child of whatever request or timer started it.
        Activity.Current = null;
        using Activity? span = ServiceInstruments.Source.StartActivity("backup job", ActivityKind.Internal);
        span?.SetTag("grpc_backup.job", plan.JobName);
        span?.SetTag("grpc_backup.job_id", jobId);
        span?.SetTag("grpc_backup.storage", plan.Storage.Name);
        span?.SetTag("grpc_backup.task_id", task.Id);
        var hooks = new HookRunner(plan.Hook, plan.JobName, plan.Storage.Name, config.Host.Node);
        catalog.RunStarted(task.Id, task.Kind, plan.JobName, plan.Storage.Name, task.Created);
        PublishRun(task.Id);
        CancellationToken cancellationToken = task.Cancellation;
        ProviderConnection? provider = null;
        JobSession? session = null;
        string error = "";
        int failed = 0;
        bool aborted = false;
        bool jobInitDone = false, notified = false;
        try
        {
            task.SetRunning();
            task.Log("INFO", "", $"job {jobId}: {plan.Guests.Count} guest(s) to storage {plan.Storage.Name}: {string.Join(' ', plan.Guests.Select(g => g.Id))}");
            provider = await ProviderConnection.ConnectAsync(plan.Storage.Endpoint, loggerFactory: loggerFactory, cancellationToken: cancellationToken);
            if (cluster is null)
            {
                session = await JobSession.StartAsync(provider, jobId, plan.Storage.Options, m => task.Log("WARN", "", m), cancellationToken);
            }
            jobInitDone = true;
            await hooks.RunAsync(task, "job-start", jobId);
            bool[] results = await Task.WhenAll(plan.Guests.Select(g => BackupGuestAsync(task, plan, provider, hooks, jobId, g)));
            failed = results.Count(ok => !ok);
            error = failed == 0 ? "" : $"{failed} of {results.Length} guest(s) failed";
        }
        catch (Exception e)
        {
            aborted = true;
            error = Describe(e);
            task.Log("ERROR", "", $"job failed: {error}");
            if (!jobInitDone && !cancellationToken.IsCancellationRequested)
            {
                // Early: before JobCleanup and the hooks, which may take minutes against a provider that is down.
                notified = true;
                await notifier.NotifyAsync(task, plan.Notify, plan.NotifyOnFailureOnly,
                    Report(JobReport.JobInitFailed, plan.JobName, plan.Storage, task, jobId, "failed", error));
            }
        }
        finally
        {
            if (session is not null)
            {
                await session.EndAsync(!aborted && failed == 0, error);
            }
            if (provider is not null)
            {
                await provider.DisposeAsync();
            }
            await RunHookQuietlyAsync(task, hooks, aborted ? "job-abort" : "job-end", jobId);
            TaskState state = cancellationToken.IsCancellationRequested ? TaskState.Cancelled
                : aborted || failed > 0 ? TaskState.Failed : TaskState.Succeeded;
            catalog.RunEnded(task.Id, StateName(state), error, DateTime.UtcNow);
            PublishRun(task.Id);
            retention.Apply();
            ServiceInstruments.Jobs.Add(1, new TagList
            {
                { "outcome", StateName(state) },
                { "storage", plan.Storage.Name },
                { "provider", provider?.Info.Name ?? "" },
            });
            if (state != TaskState.Succeeded)
            {
                span?.SetStatus(ActivityStatusCode.Error, error);
            }
            task.Log(state == TaskState.Succeeded ? "INFO" : "WARN", "", $"job {StateName(state)}{(error.Length > 0 ? ": " + error : "")}");
            if (!notified)
            {
                // Before the task ends, so the task's log (and whoever waits for the end) sees whether it was delivered.
                await notifier.NotifyAsync(task, plan.Notify, plan.NotifyOnFailureOnly, Report(JobReport.JobEnd, plan.JobName, plan.Storage, task, jobId, StateName(state), error));
            }
            task.End(state, error);
        }
    }

    private JobReport Report(string kind, string jobName, StorageConfig storage, ServiceTask task, string jobId, string state, string error) =>
        new(kind, jobName, jobId, task.Id, storage.Name, config.Host.Node, state, error, task.Created, DateTime.UtcNow, task.Info().Guests);

    private static async Task RunHookQuietlyAsync(ServiceTask task, HookRunner hooks, string phase, string jobId, string? guestId = null,
        string? guestType = null, string? target = null, string? logFile = null)
    {
        try
        {
            await hooks.RunAsync(task, phase, jobId, guestId, guestType, target, logFile);
        }
        catch (Exception e) when (e is HookException or IOException or System.ComponentModel.Win32Exception)
        {
            task.Log("WARN", guestId ?? "", e.Message);
        }
    }

    internal static string Describe(Exception e) => e switch
    {
        RpcException rpc => $"{rpc.StatusCode}: {rpc.Status.Detail}",
        OperationCanceledException => "cancelled",
        _ => e.Message,
    };

    internal static string StateName(TaskState state) => state switch
    {
        TaskState.Succeeded => "succeeded",
        TaskState.Failed => "failed",
        TaskState.Cancelled => "cancelled",
        TaskState.Running => "running",
        _ => "queued",
    };
}
