using System.Diagnostics;
using Grpc.Backup.Host;
using Grpc.Backup.Management.V1;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Service.Internal.Catalog;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Service.Internal.Notifications;
using Grpc.Backup.Service.Internal.Tasks;
using Grpc.Backup.Service.Internal.Telemetry;
using Grpc.Backup.Service.Internal.Verification;

namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>
/// Verify runs as tasks: refresh the catalog from the provider, choose the backups, verify each one after the other
/// (<see cref="BackupVerifier"/>: restore to scratch, compare, remove the scratch), record each result in the catalog.
/// The task fails when a backup failed verification; one with nothing recorded to compare with is only a warning.
/// </summary>
internal sealed partial class JobEngine
{
    public ServiceTask StartVerify(VerifyPlan plan)
    {
        ServiceTask task = tasks.Add(new ServiceTask("verify", plan.JobName, plan.Storage.Name));
        _ = Task.Run(() => VerifyAsync(task, plan));
        return task;
    }

    private async Task VerifyAsync(ServiceTask task, VerifyPlan plan)
    {
        catalog.RunStarted(task.Id, task.Kind, plan.JobName, plan.Storage.Name, task.Created);
        PublishRun(task.Id);
        CancellationToken cancellationToken = task.Cancellation;
        string error = "";
        TaskState state = TaskState.Succeeded;
        Activity.Current = null;
        using Activity? span = ServiceInstruments.Source.StartActivity("verify job", ActivityKind.Internal);
        span?.SetTag("grpc_backup.job", plan.JobName);
        span?.SetTag("grpc_backup.storage", plan.Storage.Name);
        span?.SetTag("grpc_backup.task_id", task.Id);
        string providerName = "";
        try
        {
            task.SetRunning();
            await using ProviderConnection provider = await ProviderConnection.ConnectAsync(plan.Storage.Endpoint, loggerFactory: loggerFactory,
                cancellationToken: cancellationToken);
            providerName = provider.Info.Name;
            if (provider.Capabilities.RepositoryOperations.Contains(RepositoryOperation.ListBackups))
            {
                await CatalogRefresh.RefreshAsync(catalog, provider, plan.Storage.Name, null, cancellationToken);
            }
            List<BackupRecord> backups = Choose(plan);
            task.Log("INFO", "", $"verifying {backups.Count} backup(s) of storage {plan.Storage.Name}: {string.Join(' ', backups.Select(b => b.Archive))}");
            var verifier = new BackupVerifier(catalog, config.Host.TemporaryDirectory,
                id => config.Guests.GetValueOrDefault(id)?.Container, loggerFactory);
            var failures = new List<string>();
            foreach (BackupRecord backup in backups)
            {
                cancellationToken.ThrowIfCancellationRequested();
                VerificationOutcome outcome = await verifier.VerifyAsync(task, provider, backup, cancellationToken);
                catalog.SetVerification(new VerificationRecord(plan.Storage.Name, backup.Archive, outcome.State, outcome.Detail, DateTime.UtcNow, task.Id));
                ServiceInstruments.Verifications.Add(1, new TagList
                {
                    { "outcome", outcome.State },
                    { "storage", plan.Storage.Name },
                    { "provider", providerName },
                });
                task.Log(outcome.State switch
                {
                    VerificationRecord.Verified => "INFO",
                    VerificationRecord.Failed => "ERROR",
                    _ => "WARN",
                }, backup.GuestId, $"{backup.Archive}: {outcome.State}: {outcome.Detail}");
                if (outcome.State == VerificationRecord.Failed)
                {
                    failures.Add($"{backup.Archive}: {outcome.Detail}");
                }
            }
            if (failures.Count > 0)
            {
                state = TaskState.Failed;
                error = $"{failures.Count} of {backups.Count} backup(s) failed verification: {string.Join("; ", failures)}";
            }
        }
        catch (Exception e)
        {
            error = Describe(e);
            state = cancellationToken.IsCancellationRequested ? TaskState.Cancelled : TaskState.Failed;
            task.Log("ERROR", "", $"verify failed: {error}");
        }
        catalog.RunEnded(task.Id, StateName(state), error, DateTime.UtcNow);
        PublishRun(task.Id);
        retention.Apply();
        task.Log(state == TaskState.Succeeded ? "INFO" : "WARN", "", $"verify {StateName(state)}{(error.Length > 0 ? ": " + error : "")}");
        if (state != TaskState.Succeeded)
        {
            span?.SetStatus(ActivityStatusCode.Error, error);
        }
        await notifier.NotifyAsync(task, plan.Notify, plan.NotifyOnFailureOnly, Report(JobReport.VerifyEnd, plan.JobName, plan.Storage, task, "",
            StateName(state), error));
        task.End(state, error);
    }

    private List<BackupRecord> Choose(VerifyPlan plan)
    {
        if (plan.Archive is { } archive)
        {
            return [catalog.Backups(plan.Storage.Name, null).FirstOrDefault(b => b.Archive == archive)
                ?? throw new InvalidOperationException($"storage {plan.Storage.Name} holds no backup '{archive}'")];
        }
        IReadOnlyDictionary<string, VerificationRecord> verified = catalog.Verifications(plan.Storage.Name);
        var chosen = new List<BackupRecord>();
        foreach (string guestId in plan.GuestIds)
        {
            IReadOnlyList<BackupRecord> ofGuest = catalog.Backups(plan.Storage.Name, guestId);
            chosen.AddRange(plan.Selection == VerifySelection.Latest
                ? ofGuest.Take(1)
                : ofGuest.Where(b => !verified.ContainsKey(b.Storage + "/" + b.Archive)));
        }
        return chosen;
    }
}
