using Grpc.Backup.Service.Internal.Configuration;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Service.Internal.Catalog;

/// <summary>
/// Keeps the host's own state bounded: after every run and prune (and hourly, for a service left idle) the run history
/// is cut to <c>history-keep-days</c> / <c>history-keep-runs</c> with the removed runs' task logs, and the catalog is
/// checkpointed and vacuumed. Records of removed backups go with them at each catalog refresh
/// (<see cref="CatalogDatabase.ReplaceBackups"/>, <see cref="ForgetManifests"/>).
/// </summary>
internal sealed partial class StateRetention(CatalogDatabase catalog, ServicePaths paths, ServiceConfiguration config,
    ILogger<StateRetention> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromHours(1);
    private readonly Lock _gate = new();

    /// <summary>Applies the history policy, deletes the removed runs' task logs, and compacts the catalog.</summary>
    public void Apply()
    {
        lock (_gate)
        {
            try
            {
                IReadOnlyList<string> removed = catalog.PruneHistory(DateTime.UtcNow, config.Host.HistoryKeepDays, config.Host.HistoryKeepRuns);
                foreach (string taskId in removed)
                {
                    // Task ids are GUIDs the service made: nothing in them is a pattern character.
                    foreach (string log in Directory.EnumerateFiles(paths.LogDirectory, taskId + "-*.log"))
                    {
                        File.Delete(log);
                    }
                }
                catalog.Compact();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or SqliteException)
            {
                // The next run tries again; a full history is no reason to fail a backup.
                LogFailed(logger, e.Message);
            }
        }
    }

    /// <summary>Deletes the manifest files of backups the catalog forgot (paths the service itself recorded).</summary>
    public static void ForgetManifests(IEnumerable<string> manifestPaths)
    {
        foreach (string path in manifestPaths)
        {
            File.Delete(path);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        do
        {
            Apply();
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Applying the history policy failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
