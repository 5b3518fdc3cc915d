using System.Diagnostics;
using System.Text.Json.Nodes;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator.Internal;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Qemu;

namespace Grpc.Backup.Orchestrator;

/// <summary>
/// A live restore whose guest runs: one <c>block-stream</c> job per disk fills its qcow2 from the guarded export.
/// <see cref="Completion"/> ends when every disk is independent (no backing node left; each guard stopped and the
/// provider's volume session ended as its disk completed) and <c>RestoreVmCleanup</c> ran. Disposing a session that
/// has not completed cancels it (<see cref="CancelAsync"/>).
/// </summary>
public sealed class LiveRestoreSession : IAsyncDisposable
{
    private readonly ProviderConnection _provider;
    private readonly string _archiveName;
    private readonly string _restoreId;
    private readonly QmpClient _qmp;
    private readonly IReadOnlyList<DiskStream> _streams;
    private readonly Stopwatch _streaming = new();
    private readonly CancellationTokenSource _stopResuming = new();
    private Task _completion = Task.CompletedTask;
    private Task _resuming = Task.CompletedTask;
    private int _vmCleaned;

    internal LiveRestoreSession(ProviderConnection provider, string archiveName, string restoreId, QmpClient qmp, IReadOnlyList<DiskStream> streams)
    {
        _provider = provider;
        _archiveName = archiveName;
        _restoreId = restoreId;
        _qmp = qmp;
        _streams = streams;
    }

    public IReadOnlyList<LiveRestoreDisk> Disks => _streams.Select(s => s.Disk).ToArray();

    /// <summary>Ends when every disk is independent of the provider; faults if a stream fails or the VM's monitor goes away.</summary>
    public Task Completion => _completion;

    /// <summary>Starts the streams (the guest already runs on the disks).</summary>
    internal async Task StartAsync(ulong speed, CancellationToken cancellationToken)
    {
        _streaming.Start();
        foreach (DiskStream stream in _streams)
        {
            await stream.StartAsync(_qmp, ShareOf(speed, _streams.Count), cancellationToken);
        }
        _completion = RunAsync();
        _resuming = ResumeAsync(_stopResuming.Token);
    }

    /// <summary>How often a stopped stream or VM is looked at (<see cref="ResumeAsync"/>).</summary>
    private static readonly TimeSpan ResumeInterval = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Resumes what a lost export stopped, once the export is reachable again. Each stream job paused by a read error
    /// (<c>on-error=stop</c>: io-status failed) is resumed every <see cref="ResumeInterval"/>: its retried read makes
    /// QEMU's NBD client connect to the guard again, whose upstream connector claims the source again from the provider
    /// (<see cref="LiveRestoreRunner"/>); while that fails, the job just pauses again. A VM stopped on an I/O error
    /// (<c>rerror/werror=stop</c>) is continued (<c>cont</c>) only after an export was reached again, so the guest's
    /// failed request is retried and succeeds; the guest never sees the outage as an error.
    /// </summary>
    private async Task ResumeAsync(CancellationToken stop)
    {
        int reached = _streams.Sum(s => s.Reconnections);
        try
        {
            while (true)
            {
                await Task.Delay(ResumeInterval, stop);
                var jobs = (JsonArray?)await _qmp.ExecuteAsync("query-block-jobs", cancellationToken: stop) ?? [];
                foreach (DiskStream stream in _streams)
                {
                    JsonNode? job = jobs.FirstOrDefault(j => (string?)j?["device"] == stream.JobId);
                    if ((string?)job?["status"] == "paused" && (string?)job?["io-status"] == "failed")
                    {
                        await IgnoreMonitorErrorsAsync(() => _qmp.ExecuteAsync("block-job-resume", new JsonObject { ["device"] = stream.JobId }, stop));
                    }
                }
                int now = _streams.Sum(s => s.Reconnections);
                if (now != reached)
                {
                    await ContinueAfterIoErrorAsync(stop);
                    reached = now;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or QmpException or IOException or ObjectDisposedException)
        {
            // Stopped (completed, cancelled), or the VM's monitor is gone: nothing left to resume.
        }
    }

    /// <summary>
    /// <c>cont</c> for a VM stopped on an I/O error (its failed requests are retried); a VM paused by anyone else stays
    /// paused. A monitor without run states (qemu-storage-daemon) has nothing to continue.
    /// </summary>
    private async Task ContinueAfterIoErrorAsync(CancellationToken stop)
    {
        JsonNode? status;
        try
        {
            status = await _qmp.ExecuteAsync("query-status", cancellationToken: stop);
        }
        catch (QmpCommandException e) when (e.ErrorClass == "CommandNotFound")
        {
            return;
        }
        if ((string?)status?["status"] == "io-error")
        {
            await IgnoreMonitorErrorsAsync(() => _qmp.ExecuteAsync("cont", cancellationToken: stop));
        }
    }

    /// <summary>Bytes streamed so far (completed disks count whole), the rate since the start and the time left at that rate.</summary>
    public async Task<LiveRestoreProgress> GetProgressAsync(CancellationToken cancellationToken = default)
    {
        var jobs = (JsonArray?)await _qmp.ExecuteAsync("query-block-jobs", cancellationToken: cancellationToken) ?? [];
        bool paused = false;
        var disks = new List<LiveRestoreDiskProgress>(_streams.Count);
        foreach (DiskStream stream in _streams)
        {
            long size = stream.Disk.SizeBytes;
            if (stream.Independent)
            {
                disks.Add(new LiveRestoreDiskProgress(stream.Disk.DeviceName, size, size, Independent: true));
                continue;
            }
            JsonNode? job = jobs.FirstOrDefault(j => (string?)j?["device"] == stream.JobId);
            disks.Add(new LiveRestoreDiskProgress(stream.Disk.DeviceName, (long?)job?["offset"] ?? 0, size, Independent: false));
            paused |= (string?)job?["status"] == "paused";
        }
        long done = disks.Sum(d => d.BytesDone);
        long total = disks.Sum(d => d.BytesTotal);
        double rate = done / Math.Max(_streaming.Elapsed.TotalSeconds, 0.001);
        return new LiveRestoreProgress(done, total, rate, rate > 0 ? TimeSpan.FromSeconds((total - done) / rate) : null, paused)
        {
            DisksDone = disks.Count(d => d.Independent),
            Disks = disks,
        };
    }

    /// <summary>
    /// Waits for <see cref="Completion"/>, handing <paramref name="report"/> the progress every <paramref name="interval"/>
    /// and once at the end. Cancelling <paramref name="cancellationToken"/> cancels the restore (<see cref="CancelAsync"/>,
    /// its defined state) and then throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public async Task WaitAsync(TimeSpan interval, Func<LiveRestoreProgress, Task> report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        try
        {
            while (!_completion.IsCompleted)
            {
                await Task.WhenAny(_completion, Task.Delay(interval, cancellationToken));
                cancellationToken.ThrowIfCancellationRequested();
                await report(await GetProgressAsync(cancellationToken));
            }
            await _completion;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await CancelAsync();
            throw;
        }
    }

    /// <summary>Changes the restore's bandwidth limit (bytes per second over all its streams, 0 unlimited): <c>block-job-set-speed</c>.</summary>
    public async Task SetBandwidthLimitAsync(ulong bytesPerSecond, CancellationToken cancellationToken = default)
    {
        DiskStream[] streaming = [.. _streams.Where(s => !s.Independent)];
        foreach (DiskStream stream in streaming)
        {
            try
            {
                await _qmp.ExecuteAsync("block-job-set-speed", new JsonObject
                {
                    ["device"] = stream.JobId, ["speed"] = ShareOf(bytesPerSecond, streaming.Length),
                }, cancellationToken);
            }
            catch (QmpCommandException) when (stream.Independent)
            {
                // It completed meanwhile.
            }
        }
    }

    /// <summary>
    /// Cancels a restore that has not completed, leaving a defined state: the VM is paused first (<c>stop</c>), so the
    /// guest never sees its disks lose their backing; the unfinished jobs are cancelled; their guards are stopped and
    /// the provider's sessions ended. Each unfinished qcow2 keeps what was streamed and what the guest wrote, and its
    /// header still names the (now gone) guarded export as backing, so it cannot be opened alone by mistake. Disks that
    /// completed are whole and independent. The caller decides what becomes of the paused VM and the files.
    /// </summary>
    public async Task CancelAsync()
    {
        await StopResumingAsync();
        if (_streams.All(s => s.Independent))
        {
            await CleanupVmAsync();
            return;
        }
        await IgnoreMonitorErrorsAsync(() => _qmp.ExecuteAsync("stop"));
        foreach (DiskStream stream in _streams.Where(s => !s.Independent))
        {
            await IgnoreMonitorErrorsAsync(() => _qmp.ExecuteAsync("block-job-cancel", new JsonObject { ["device"] = stream.JobId, ["force"] = true }));
        }
        try
        {
            await _completion.WaitAsync(TimeSpan.FromMinutes(1));
        }
        catch (Exception e) when (e is BackupException or TimeoutException or QmpException or IOException or OperationCanceledException)
        {
            // Whatever ended the streams, what is left is released below.
        }
        foreach (DiskStream stream in _streams)
        {
            await ProviderCleanup.IgnoringProviderErrorsAsync(stream.ReleaseAsync);
        }
        await CleanupVmAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_completion.IsCompletedSuccessfully)
        {
            await CancelAsync();
        }
        await StopResumingAsync();
        await _qmp.DisposeAsync();
        _stopResuming.Dispose();
    }

    /// <summary>
    /// One job's part of the restore's limit: the limit is the whole restore's, split evenly among the disks streaming
    /// when it is set (block-stream's speed is per job; 0 stays unlimited, a positive limit never becomes 0).
    /// </summary>
    private static ulong ShareOf(ulong limit, int streams) => limit == 0 ? 0 : Math.Max(1, limit / (ulong)Math.Max(1, streams));

    private async Task StopResumingAsync()
    {
        if (!_stopResuming.IsCancellationRequested)
        {
            await _stopResuming.CancelAsync();
        }
        await _resuming;
    }

    private async Task RunAsync()
    {
        bool[] completed = await Task.WhenAll(_streams.Select(s => s.WaitAsync()));
        if (completed.All(c => c))
        {
            await CleanupVmAsync();
        }
        else
        {
            throw new OperationCanceledException("the live restore was cancelled");
        }
    }

    private async Task CleanupVmAsync()
    {
        if (Interlocked.Exchange(ref _vmCleaned, 1) == 0)
        {
            await ProviderCleanup.IgnoringProviderErrorsAsync(() => _provider.Restore.RestoreVmCleanupAsync(
                new RestoreVmCleanupRequest { RestoreId = _restoreId, ArchiveName = _archiveName }).ResponseAsync);
        }
    }

    private static async Task IgnoreMonitorErrorsAsync(Func<Task> command)
    {
        try
        {
            await command();
        }
        catch (Exception e) when (e is QmpException or IOException or ObjectDisposedException)
        {
            // The VM is gone, or the job already ended: nothing left to stop.
        }
    }
}
