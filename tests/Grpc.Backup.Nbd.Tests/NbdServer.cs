using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Grpc.Backup.Nbd.Tests;

/// <summary>
/// A real NBD server process (qemu-nbd, nbdkit, qemu-storage-daemon) listening on a Unix socket.
/// Starting waits until the socket accepts connections; disposing kills the whole process tree.
/// Also runs the one-shot image tools (qemu-img, qemu-io) the tests prepare images with.
/// </summary>
internal sealed class NbdServer : IAsyncDisposable
{
    private static readonly TimeSpan s_startTimeout = TimeSpan.FromSeconds(20);

    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private NbdServer(Process process, string socketPath)
    {
        _process = process;
        SocketPath = socketPath;
    }

    public string SocketPath { get; }

    /// <summary>The server's process id (for its RSS in /proc).</summary>
    public int ProcessId => _process.Id;

    /// <summary>Whether the server is still running (a QEMU assertion aborts it).</summary>
    public bool IsRunning => !_process.HasExited;

    /// <summary>What the server printed so far.</summary>
    public string OutputText => Output;

    public NbdUri Uri(string exportName = "") => new(SocketPath, exportName);

    public static async Task<NbdServer> StartAsync(string program, string socketPath, params string[] arguments)
    {
        var process = new Process { StartInfo = CreateStartInfo(program, arguments) };
        var server = new NbdServer(process, socketPath);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await server.WaitUntilListeningAsync(program);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs a tool to completion; throws with its output if it fails.</summary>
    public static async Task RunToolAsync(string program, params string[] arguments)
    {
        using var process = new Process { StartInfo = CreateStartInfo(program, arguments) };
        process.Start();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', arguments)} did not finish within 60 s.");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{program} {string.Join(' ', arguments)} exited with {process.ExitCode}: {await stdout}{await stderr}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped.
        }
        finally
        {
            _process.Dispose();
        }
    }

    private static ProcessStartInfo CreateStartInfo(string program, string[] arguments)
    {
        var startInfo = new ProcessStartInfo(program)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        return startInfo;
    }

    private async Task WaitUntilListeningAsync(string program)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{program} exited with {_process.ExitCode} before listening: {Output}");
            }

            // The socket file appears at bind(), before listen(); only a successful connect proves
            // the server is ready. Servers are started persistent, so the probe costs nothing.
            if (File.Exists(SocketPath))
            {
                using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await probe.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath));
                    return;
                }
                catch (SocketException)
                {
                    // Not listening yet.
                }
            }

            if (clock.Elapsed > s_startTimeout)
            {
                throw new TimeoutException($"{program} did not listen on {SocketPath} within {s_startTimeout}: {Output}");
            }

            await Task.Delay(20);
        }
    }

    private string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}
