using System.Diagnostics;
using Grpc.Backup.Service.Internal.Tasks;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>
/// Runs a job's hook script at vzdump's phases: <c>job-start</c>, <c>job-end</c>, <c>job-abort</c> (argument: the
/// phase), and <c>backup-start</c>, <c>backup-end</c>, <c>backup-abort</c>, <c>log-end</c> (arguments: phase, mode,
/// guest id). The environment carries STOREID, HOSTNAME, VMTYPE, TARGET and LOGFILE as vzdump sets them, plus JOBID
/// and JOBNAME. A hook that fails a start phase fails that job or guest; a failure at any other phase is logged.
/// </summary>
internal sealed class HookRunner(string? script, string jobName, string storage, string node)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    public async Task RunAsync(ServiceTask task, string phase, string jobId, string? guestId = null, string? guestType = null,
        string? target = null, string? logFile = null)
    {
        if (script is null)
        {
            return;
        }
        var info = new ProcessStartInfo(script);
        info.ArgumentList.Add(phase);
        if (guestId is not null)
        {
            info.ArgumentList.Add("snapshot");
            info.ArgumentList.Add(guestId);
        }
        info.Environment["STOREID"] = storage;
        info.Environment["HOSTNAME"] = node;
        info.Environment["JOBID"] = jobId;
        info.Environment["JOBNAME"] = jobName;
        Set(info, "VMTYPE", guestType);
        Set(info, "TARGET", target);
        Set(info, "LOGFILE", logFile);
        await using ExternalProcess process = StartHook(info);
        using var timeout = new CancellationTokenSource(Timeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            // Disposing kills it and everything it started.
            throw new HookException($"hook {phase} timed out after {Timeout.TotalMinutes} minutes");
        }
        foreach (string line in (process.StandardOutput + process.ErrorOutput).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            task.Log("INFO", guestId ?? "", $"hook {phase}: {line}");
        }
        if (process.ExitCode != 0)
        {
            throw new HookException($"hook {phase} exited with status {process.ExitCode}");
        }
    }

    private static ExternalProcess StartHook(ProcessStartInfo info)
    {
        try
        {
            return ExternalProcess.Start(info, new ExternalProcessOptions { CaptureStandardOutput = true });
        }
        catch (ExternalProcessException e)
        {
            throw new HookException($"hook {info.FileName} could not be started: {e.InnerException?.Message ?? e.Message}");
        }
    }

    private static void Set(ProcessStartInfo info, string name, string? value)
    {
        if (value is not null)
        {
            info.Environment[name] = value;
        }
    }
}
