using System.Diagnostics;
using System.Text;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// Runs a tool (qemu-img) with an argument list, never through a shell, and captures its output. The process is
/// killed if the caller gives up, so no tool outlives the call that started it.
/// </summary>
internal static class ExternalTool
{
    /// <summary>Error text kept from a tool's stderr; enough for the message, bounded for the status details.</summary>
    public const int MaxErrorText = 2000;

    public static ProcessStartInfo StartInfo(string fileName, IEnumerable<string> arguments, string? workingDirectory)
    {
        var info = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? "/",
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        // Messages in English and no locale surprises in parsed output.
        info.Environment["LC_ALL"] = "C";
        return info;
    }

    /// <summary>Runs the tool to completion; returns its stdout, or throws with its stderr when it fails.</summary>
    public static async Task<string> RunAsync(string fileName, IReadOnlyList<string> arguments, string? workingDirectory,
        CancellationToken cancellationToken)
    {
        using var process = new Process { StartInfo = StartInfo(fileName, arguments, workingDirectory) };
        process.Start();
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        Task<string> stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            await process.WaitForExitAsync(CancellationToken.None);
            throw;
        }
        string output = await stdout;
        string error = await stderr;
        if (process.ExitCode != 0)
        {
            throw new ExternalToolException(
                $"{Path.GetFileName(fileName)} {Describe(arguments)} exited with {process.ExitCode}: {Trim(error)}");
        }
        return output;
    }

    public static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It exited on its own.
        }
    }

    public static string Trim(string text)
    {
        text = text.Trim();
        return text.Length <= MaxErrorText ? text : text[..MaxErrorText] + "...";
    }

    private static string Describe(IReadOnlyList<string> arguments)
    {
        var text = new StringBuilder();
        foreach (string argument in arguments)
        {
            if (text.Length > 0)
            {
                text.Append(' ');
            }
            text.Append(argument.Contains(' ', StringComparison.Ordinal) || argument.Length == 0 ? $"'{argument}'" : argument);
        }
        return text.ToString();
    }
}
