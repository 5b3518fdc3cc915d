using System.Diagnostics;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// Starts helper programs (mount, btrfs, rsync, stat, tar...) from argument lists, never a shell string, so no path or
/// pattern is ever re-parsed. The C locale keeps their messages stable for logs and tests.
/// </summary>
internal static class ProcessRunner
{
    /// <summary>A start info for <paramref name="fileName"/> with every stdio stream redirected.</summary>
    public static ProcessStartInfo CreateStartInfo(string fileName, IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        info.Environment["LC_ALL"] = "C";
        return info;
    }

    /// <summary>Runs a program to completion, stdin empty, and captures its output. Cancellation kills it.</summary>
    public static Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> arguments, CancellationToken cancellationToken) =>
        RunAsync(CreateStartInfo(fileName, arguments), cancellationToken);

    /// <inheritdoc cref="RunAsync(string, IEnumerable{string}, CancellationToken)"/>
    public static async Task<ProcessResult> RunAsync(ProcessStartInfo info, CancellationToken cancellationToken)
    {
        await using ExternalProcess process = ExternalProcess.Start(info, new ExternalProcessOptions { CaptureStandardOutput = true });
        // Cancellation ends the wait; disposing kills the child (and anything it forked) and closes its pipes.
        await process.WaitForExitAsync(cancellationToken);
        return new ProcessResult(Describe(info), process.ExitCode, process.StandardOutput, process.ErrorOutput);
    }

    /// <summary>Kills a child (and anything it forked, e.g. rsync's receiver) and reaps it.</summary>
    public static void KillAndWait(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
            process.WaitForExit();
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped.
        }
    }

    /// <summary>Kills and reaps a child, then closes it with the pipes it redirected (Process.Dispose alone leaves them open).</summary>
    public static void KillAndDispose(Process process)
    {
        KillAndWait(process);
        ExternalProcess.DisposeWithPipes(process);
    }

    public static string Describe(ProcessStartInfo info) => string.Join(' ', [info.FileName, .. info.ArgumentList]);
}
