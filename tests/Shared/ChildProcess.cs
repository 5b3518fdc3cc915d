using System.Diagnostics;
using System.Text;

namespace Grpc.Backup.Tests.Shared;

/// <summary>
/// A process started by a test, with its output captured. Disposing kills the whole tree, so no test leaves a
/// process behind, whatever it asserted.
/// </summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private ChildProcess(Process process)
    {
        _process = process;
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public string StandardOutput
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    public string StandardError
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public static ChildProcess Start(string fileName, IEnumerable<string> arguments, IDictionary<string, string?>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                info.Environment[key] = value;
            }
        }
        var process = new Process { StartInfo = info };
        var child = new ChildProcess(process);
        process.OutputDataReceived += (_, e) => Append(child._stdout, e.Data);
        process.ErrorDataReceived += (_, e) => Append(child._stderr, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Runs a command to completion and returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string fileName, IEnumerable<string> arguments,
        IDictionary<string, string?>? environment = null, TimeSpan? timeout = null)
    {
        await using ChildProcess child = Start(fileName, arguments, environment);
        TimeSpan bound = timeout ?? TimeSpan.FromSeconds(60);
        using var cts = new CancellationTokenSource(bound);
        try
        {
            await child._process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            // A hang bound, not a timing assertion: say what the command had done when it was given up on.
            throw new TimeoutException($"{fileName} did not finish within {bound}; its output so far:\n{Tail(child.StandardOutput)}\n{Tail(child.StandardError)}");
        }
        child._process.WaitForExit(); // drains the asynchronous output readers
        return (child._process.ExitCode, child.StandardOutput, child.StandardError);
    }

    /// <summary>Runs a command to completion; a non-zero exit is an <see cref="InvalidOperationException"/> with its stderr.</summary>
    public static async Task RunCheckedAsync(string fileName, IEnumerable<string> arguments, TimeSpan? timeout = null)
    {
        var (exitCode, _, stderr) = await RunAsync(fileName, arguments, timeout: timeout);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"{fileName} failed ({exitCode}): {stderr}");
        }
    }

    public async Task WaitForFileAsync(string path, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!File.Exists(path))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"process exited ({_process.ExitCode}) before {path} appeared; stderr:\n{StandardError}");
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{path} did not appear within {timeout}; stderr:\n{StandardError}");
            }
            await Task.Delay(25);
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>Sends SIGTERM, as systemd does on stop.</summary>
    public void Terminate() => Signal("TERM");

    /// <summary>
    /// Sends one signal (<c>KILL</c>, <c>STOP</c>, ...) to this process alone, not to its children: <c>KILL</c> is a crash
    /// of this process, whose children (if any) are left to the caller's checks.
    /// </summary>
    public void Signal(string name)
    {
        using var kill = Process.Start("kill", ["-" + name, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }

    private static void Append(StringBuilder buffer, string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (buffer)
        {
            buffer.AppendLine(line);
        }
    }

    private static string Tail(string text) => text.Length <= 4000 ? text : text[^4000..];
}
