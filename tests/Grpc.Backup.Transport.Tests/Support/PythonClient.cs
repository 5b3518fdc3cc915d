using System.Diagnostics;

namespace Grpc.Backup.Transport.Tests.Support;

/// <summary>sideband_client.py in its own process, optionally under another uid via setpriv.</summary>
internal sealed class PythonClient : IDisposable
{
    public const string Python = "/usr/bin/python3";
    public const string Setpriv = "/usr/bin/setpriv";

    private readonly Process _process;

    private PythonClient(Process process) => _process = process;

    /// <param name="directory">Where to put a copy of the script that any uid can read.</param>
    /// <param name="uid">Run as this uid (with gid 0 and no supplementary groups); null: as this process.</param>
    public static PythonClient Start(TempDirectory directory, uint? uid, params string[] arguments)
    {
        string script = directory.File("sideband_client.py");
        if (!File.Exists(script))
        {
            File.Copy(Path.Combine(AppContext.BaseDirectory, "sideband_client.py"), script);
            File.SetUnixFileMode(script, (UnixFileMode)Convert.ToInt32("644", 8));
        }

        var start = new ProcessStartInfo
        {
            FileName = uid is null ? Python : Setpriv,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (uid is { } id)
        {
            start.ArgumentList.Add($"--reuid={id}");
            start.ArgumentList.Add("--regid=0");
            start.ArgumentList.Add("--clear-groups");
            start.ArgumentList.Add(Python);
        }

        start.ArgumentList.Add(script);
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return new PythonClient(Process.Start(start) ?? throw new InvalidOperationException("python did not start"));
    }

    /// <summary>The next line the script prints (null at its end), within 20 s.</summary>
    public async Task<string?> ReadLineAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        return await _process.StandardOutput.ReadLineAsync(timeout.Token);
    }

    /// <summary>Exit code and stderr, within 20 s.</summary>
    public async Task<(int ExitCode, string Errors)> WaitForExitAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        string errors = await _process.StandardError.ReadToEndAsync(timeout.Token);
        await _process.WaitForExitAsync(timeout.Token);
        return (_process.ExitCode, errors);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }

        _process.Dispose();
    }
}
