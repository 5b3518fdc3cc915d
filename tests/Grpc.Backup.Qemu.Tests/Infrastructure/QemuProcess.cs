using System.Diagnostics;
using System.Text;

namespace Grpc.Backup.Qemu.Tests.Infrastructure;

/// <summary>
/// A QEMU process in its own temporary directory. Disposal kills the whole process tree and deletes
/// the directory, whatever state the test left them in.
/// </summary>
public sealed class QemuProcess : IAsyncDisposable
{
    private static readonly TimeSpan s_startTimeout = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly StringBuilder _output;

    private QemuProcess(Process process, StringBuilder output, string directory)
    {
        _process = process;
        _output = output;
        Directory = directory;
    }

    public string Directory { get; }

    public string QmpSocketPath => Path.Combine(Directory, "qmp.sock");

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>
    /// Creates a temp directory, lets <paramref name="prepare"/> fill it, starts
    /// <paramref name="fileName"/> with the arguments built for that directory and waits until
    /// <c>qmp.sock</c> appears in it.
    /// </summary>
    public static async Task<QemuProcess> StartAsync(string fileName, Func<string, IEnumerable<string>> arguments, Func<string, Task>? prepare = null)
    {
        string directory = System.IO.Directory.CreateTempSubdirectory("qmp-test-").FullName;
        QemuProcess? qemu = null;
        try
        {
            if (prepare is not null)
            {
                await prepare(directory);
            }

            var output = new StringBuilder();
            var process = new Process { StartInfo = CreateStartInfo(fileName, arguments(directory)) };
            process.OutputDataReceived += (_, e) => Append(output, e.Data);
            process.ErrorDataReceived += (_, e) => Append(output, e.Data);
            process.Start();
            qemu = new QemuProcess(process, output, directory);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();

            await qemu.WaitForSocketAsync();
            return qemu;
        }
        catch
        {
            if (qemu is not null)
            {
                await qemu.DisposeAsync();
            }
            else
            {
                System.IO.Directory.Delete(directory, recursive: true);
            }

            throw;
        }
    }

    /// <summary>Starts <c>qemu-storage-daemon</c> with its QMP monitor on <see cref="QmpSocketPath"/>.</summary>
    public static Task<QemuProcess> StartStorageDaemonAsync(Func<string, IEnumerable<string>> blockdevArguments, Func<string, Task>? prepare = null)
        => StartAsync(
            "qemu-storage-daemon",
            dir => ["--chardev", $"socket,id=qmp0,path={Path.Combine(dir, "qmp.sock")},server=on,wait=off", "--monitor", "chardev=qmp0", .. blockdevArguments(dir)],
            prepare);

    /// <summary>Starts a paused, device-less <c>qemu-system-x86_64</c> (TCG; this host has no KVM).</summary>
    public static Task<QemuProcess> StartSystemAsync()
        => StartAsync(
            "qemu-system-x86_64",
            dir => ["-qmp", $"unix:{Path.Combine(dir, "qmp.sock")},server=on,wait=off", "-machine", "none", "-accel", "tcg", "-nodefaults", "-display", "none", "-S"]);

    /// <summary>Runs a tool such as qemu-img to completion and returns its standard output.</summary>
    public static async Task<string> RunToolAsync(string fileName, params string[] arguments)
    {
        using var process = new Process { StartInfo = CreateStartInfo(fileName, arguments) };
        process.Start();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(s_startTimeout);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{fileName} {string.Join(' ', arguments)} exited with {process.ExitCode}: {await stderr}");
        }

        return await stdout;
    }

    public async Task<QmpClient> ConnectAsync(QmpClientOptions? options = null)
    {
        using var timeout = new CancellationTokenSource(s_startTimeout);
        return await QmpClient.ConnectAsync(QmpSocketPath, options, timeout.Token);
    }

    /// <summary>Sends a signal (e.g. STOP, CONT) to the process.</summary>
    public Task SignalAsync(string signal) => RunToolAsync("kill", $"-{signal}", ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>SIGKILLs the process tree and waits until it is gone.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
    }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await KillAsync();
        }
        catch (InvalidOperationException)
        {
            // The process had already been reaped.
        }
        finally
        {
            _process.Dispose();
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }

    private async Task WaitForSocketAsync()
    {
        var stopwatch = Stopwatch.StartNew();
        while (!File.Exists(QmpSocketPath))
        {
            if (_process.HasExited)
            {
                await _process.WaitForExitAsync(); // flushes the captured output
                throw new InvalidOperationException($"{_process.StartInfo.FileName} exited with {_process.ExitCode} before creating its QMP socket: {Output}");
            }

            if (stopwatch.Elapsed > s_startTimeout)
            {
                throw new TimeoutException($"{_process.StartInfo.FileName} did not create {QmpSocketPath} within {s_startTimeout}: {Output}");
            }

            await Task.Delay(20);
        }
    }

    private static ProcessStartInfo CreateStartInfo(string fileName, IEnumerable<string> arguments)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true, // QEMU must never read the test runner's stdin
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        return startInfo;
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is not null)
        {
            lock (output)
            {
                output.AppendLine(line);
            }
        }
    }
}
