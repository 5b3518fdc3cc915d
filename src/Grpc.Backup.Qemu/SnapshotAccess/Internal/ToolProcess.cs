using System.Diagnostics;
using System.Text;

namespace Grpc.Backup.Qemu.Internal;

/// <summary>Starts QEMU's command-line tools with arguments passed verbatim (never through a shell).</summary>
internal static class ToolProcess
{
    /// <param name="stderr">Collects standard error (for error messages).</param>
    /// <param name="drainStdout">
    /// For long-running tools whose output nobody reads: discard it, so a full pipe can never block them.
    /// </param>
    public static Process Start(string fileName, IEnumerable<string> arguments, StringBuilder? stderr = null, bool drainStdout = false)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true, // a tool must never read our stdin
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = startInfo };
        process.ErrorDataReceived += (_, e) => Append(stderr, e.Data);
        process.Start();
        process.BeginErrorReadLine();
        if (drainStdout)
        {
            process.BeginOutputReadLine();
        }

        return process;
    }

    /// <summary>Runs a tool to completion and returns its standard output; a non-zero exit is an <see cref="IOException"/>.</summary>
    public static async Task<string> RunAsync(string fileName, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var stderr = new StringBuilder();
        using Process process = Start(fileName, arguments, stderr);
        try
        {
            string stdout = await process.StandardOutput.ReadToEndAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken);
            if (process.ExitCode != 0)
            {
                throw new IOException($"{fileName} {string.Join(' ', arguments)} exited with {process.ExitCode}: {Read(stderr).Trim()}");
            }

            return stdout;
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            throw;
        }
    }

    /// <summary>Kills the tool and its children, if it is still running.</summary>
    public static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }

    public static string Read(StringBuilder text)
    {
        lock (text)
        {
            return text.ToString();
        }
    }

    private static void Append(StringBuilder? text, string? line)
    {
        if (text is not null && line is not null)
        {
            lock (text)
            {
                text.AppendLine(line);
            }
        }
    }
}
