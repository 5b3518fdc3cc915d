using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Host;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Transport;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// The frame every guest's backup shares, whatever the guest type: BackupInit (with the archive name checked as
/// untrusted input), the type-specific body, then the task log hand-off and BackupCleanup, which run on every path.
/// </summary>
internal sealed class GuestBackupSession(ProviderConnection provider, ILogger logger)
{
    /// <summary>What backup.proto allows BackupCleanup (and the log hand-off before it), from the host's side.</summary>
    public static readonly TimeSpan CleanupTimeout = ProviderDeadlines.Cleanup;

    /// <summary>
    /// Runs <paramref name="body"/> (given the backup id, the archive name and the task log) inside the frame. The
    /// backup id is <paramref name="backupId"/> when the caller chose one (a journaling service), else a new one.
    /// </summary>
    /// <param name="settle">What must wait for the provider's commit (a VM's dirty bitmaps): called with true only after
    /// BackupCleanup(success=true) returned OK, with false on every other path; it must not throw.</param>
    /// <returns>The body's result and the provider's stats from BackupCleanup.</returns>
    public async Task<(T Result, BackupStats Stats)> RunAsync<T>(string jobId, GuestType guestType, string guestId, string guestName,
        string runtimeDirectory, string? backupId, Func<string, string, TaskLog, Task<T>> body, CancellationToken cancellationToken,
        Func<bool, TaskLog, Task>? settle = null, PhaseTimings? phases = null)
    {
        phases ??= new PhaseTimings();
        ArgumentNullException.ThrowIfNull(body);
        backupId ??= Guid.NewGuid().ToString();
        string logPath = Path.Combine(runtimeDirectory, $"task-{backupId}.log");
        using var log = new TaskLog(logPath, logger);
        try
        {
            log.Info($"starting backup of {(guestType == GuestType.Vm ? "VM" : "container")} {guestId} ({guestName}) to {provider.Info.Name}");
            BackupInitResponse init;
            using (phases.Measure("init"))
            {
                init = await provider.Backup.BackupInitAsync(new BackupInitRequest
                {
                    JobId = jobId,
                    BackupId = backupId,
                    GuestId = guestId,
                    GuestType = guestType,
                    BackupTime = Timestamp.FromDateTime(DateTime.UtcNow),
                    GuestName = guestName,
                }, cancellationToken: cancellationToken);
            }
            if (ArchiveName.Check(init.ArchiveName) is { } problem)
            {
                throw new BackupException($"provider {provider.Info.Name} returned an invalid archive name: {problem}");
            }
            log.Info($"archive {init.ArchiveName}");
            T result = await body(backupId, init.ArchiveName, log);
            log.Info("stored; BackupCleanup(success=true) decides whether the backup is committed");
            BackupStats stats;
            using (phases.Measure("commit"))
            {
                stats = await CleanupAsync(jobId, backupId, true, "", log, logPath) ?? new BackupStats();
                log.Info("BackupCleanup(success=true) returned OK: the provider committed the backup");
                // Only now is the archive the provider's: what depends on it (the next incremental's base) may move.
                if (settle is not null)
                {
                    await settle(true, log);
                }
            }
            log.Info($"phases: {phases}");
            return (result, stats);
        }
        catch (Exception e)
        {
            string error = e is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : e.Message;
            log.Error($"backup failed: {error}");
            try
            {
                // BackupCleanup runs on every path; for a backup_id the provider never saw it is a harmless no-op.
                await CleanupAsync(jobId, backupId, false, error, log, logPath);
            }
            finally
            {
                if (settle is not null)
                {
                    await settle(false, log);
                }
            }
            throw;
        }
        finally
        {
            log.Dispose();
            File.Delete(logPath);
        }
    }

    private async Task<BackupStats?> CleanupAsync(string jobId, string backupId, bool success, string error, TaskLog log, string logPath)
    {
        // The log and the cleanup must reach the provider even when the backup was cancelled. BackupCleanup gets the
        // time the contract gives it (backup.proto), as its deadline: the connection's shorter unary deadline would
        // otherwise apply, and a commit cut off by it would count as failed.
        using var timeout = new CancellationTokenSource(CleanupTimeout);
        DateTime deadline = DateTime.UtcNow + CleanupTimeout;
        try
        {
            using (var handle = File.OpenHandle(logPath, FileMode.Open, FileAccess.Read))
            {
                var refs = await provider.SendFdsAsync([new FdToSend(handle, Transport.FdKind.File)], timeout.Token);
                await provider.Backup.BackupHandleLogFileAsync(new BackupHandleLogFileRequest { BackupId = backupId, LogFile = refs[0] },
                    cancellationToken: timeout.Token);
            }
        }
        catch (Exception e) when (e is RpcException or IOException or System.Net.Sockets.SocketException)
        {
            // A provider that restarted has a new sideband; its loss must not keep BackupCleanup from being called.
            log.Warn($"handing the task log to the provider failed: {e.Message}");
        }
        try
        {
            var response = await provider.Backup.BackupCleanupAsync(new BackupCleanupRequest
            {
                JobId = jobId,
                BackupId = backupId,
                Success = success,
                Error = error,
            }, deadline: deadline, cancellationToken: timeout.Token);
            return response.Stats;
        }
        catch (RpcException e) when (!success)
        {
            log.Warn($"BackupCleanup after a failure also failed: {e.Status.Detail}");
            return null;
        }
    }
}
