using System.Diagnostics;
using System.Text;

namespace Grpc.Backup.Transport;

/// <summary>
/// A host tool (qemu-img, qemu-nbd, prlimit, ...) started with an argument list, never through a shell. Its stdin is
/// closed at once (a tool must never read ours), stderr is collected (bounded, for error messages) and stdout is
/// either captured or drained, so a full pipe never blocks the tool.
/// </summary>
/// <remarks>
/// Why this exists: <see cref="Process.Dispose()"/> does not close the redirected streams (the runtime leaves them to
/// whoever took them), so every pipe a caller read stays open until the garbage collector finalizes it. A provider
/// running qemu-img per pruned backup went from 7 to 186 open pipes. Here the pumps own the pipes and close them at
/// end of file, and <see cref="DisposeAsync"/> closes whatever is still open, on every path.
/// </remarks>
public sealed class ExternalProcess : IAsyncDisposable
{
    /// <summary>Stderr kept for messages: enough to explain a failure, bounded against a chatty tool.</summary>
    public const int MaxErrorText = 16 * 1024;

    /// <summary>Stderr shown in an exception message.</summary>
    private const int MaxMessageErrorText = 2000;

    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly StringBuilder? _stdout;
    private readonly StreamReader _stdoutReader;
    private readonly StreamReader _stderrReader;
    private readonly Task _stdoutPump;
    private readonly Task _stderrPump;
    private Task _stdinPump = Task.CompletedTask;
    private int _disposed;

    private ExternalProcess(Process process, bool captureStdout)
    {
        _process = process;
        _stdout = captureStdout ? new StringBuilder() : null;
        _stdoutReader = process.StandardOutput;
        _stderrReader = process.StandardError;
        _stdoutPump = PumpAsync(_stdoutReader, _stdout, int.MaxValue);
        _stderrPump = PumpAsync(_stderrReader, _stderr, MaxErrorText);
    }

    /// <summary>The tool's process id.</summary>
    public int Id => _process.Id;

    /// <summary>Whether the tool has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>The tool's exit code, once it has exited.</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>The tool's stdout, when <see cref="ExternalProcessOptions.CaptureStandardOutput"/> (complete after <see cref="WaitForExitAsync"/>).</summary>
    public string StandardOutput
    {
        get
        {
            if (_stdout is null)
            {
                return string.Empty;
            }
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    /// <summary>What the tool wrote to stderr so far (at most <see cref="MaxErrorText"/> characters), trimmed.</summary>
    public string ErrorOutput
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString().Trim();
            }
        }
    }

    /// <summary>Starts <paramref name="fileName"/> with <paramref name="arguments"/> passed verbatim.</summary>
    /// <exception cref="ExternalProcessException">The tool could not be started.</exception>
    public static ExternalProcess Start(string fileName, IEnumerable<string> arguments, ExternalProcessOptions? options = null)
    {
        var info = new ProcessStartInfo(fileName);
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        if (options?.WorkingDirectory is { } directory)
        {
            info.WorkingDirectory = directory;
        }
        // Messages in English and no locale surprises in parsed output.
        info.Environment["LC_ALL"] = "C";
        return Start(info, options);
    }

    /// <summary>
    /// Starts a tool from a prepared <see cref="ProcessStartInfo"/> (its environment, user, working directory); the
    /// three standard streams are always redirected and owned here.
    /// </summary>
    /// <exception cref="ExternalProcessException">The tool could not be started.</exception>
    public static ExternalProcess Start(ProcessStartInfo info, ExternalProcessOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(info);
        options ??= new ExternalProcessOptions();
        info.UseShellExecute = false;
        info.RedirectStandardInput = true;
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        var process = new Process { StartInfo = info };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            process.Dispose();
            throw new ExternalProcessException($"cannot start {info.FileName}: {e.Message}", -1, string.Empty, e);
        }
        var tool = new ExternalProcess(process, options.CaptureStandardOutput);
        tool._stdinPump = FeedAsync(process.StandardInput, options.StandardInput);
        return tool;
    }

    /// <summary>
    /// Runs a tool to completion and returns its stdout. A non-zero exit, or a run longer than
    /// <paramref name="timeout"/>, is a <see cref="ExternalProcessException"/> carrying the tool's stderr; cancellation
    /// kills the tool (and its children) and throws <see cref="OperationCanceledException"/>. <paramref name="standardInput"/>,
    /// when given, is written to the tool's stdin before it is closed.
    /// </summary>
    public static async Task<string> RunAsync(string fileName, IReadOnlyList<string> arguments, CancellationToken cancellationToken,
        TimeSpan? timeout = null, string? workingDirectory = null, string? standardInput = null)
    {
        await using ExternalProcess tool = Start(fileName, arguments,
            new ExternalProcessOptions { CaptureStandardOutput = true, WorkingDirectory = workingDirectory, StandardInput = standardInput });
        using (var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            if (timeout is { } t)
            {
                limit.CancelAfter(t);
            }
            try
            {
                await tool.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ExternalProcessException($"{Describe(fileName, arguments)} did not finish within {timeout}", -1, tool.ErrorOutput);
            }
        }
        if (tool.ExitCode != 0)
        {
            string error = tool.ErrorOutput;
            throw new ExternalProcessException(
                $"{Describe(fileName, arguments)} exited with {tool.ExitCode}: {Shorten(error)}", tool.ExitCode, error);
        }
        return tool.StandardOutput;
    }

    /// <summary>
    /// Waits until the tool has exited and its stdout and stderr reached end of file (so <see cref="ErrorOutput"/> is
    /// complete). Cancellation leaves the tool running; <see cref="DisposeAsync"/> kills it.
    /// </summary>
    public async Task WaitForExitAsync(CancellationToken cancellationToken)
    {
        await _process.WaitForExitAsync(cancellationToken);
        await Task.WhenAll(_stdinPump, _stdoutPump, _stderrPump).WaitAsync(cancellationToken);
    }

    /// <summary>Kills the tool and its children, if it is still running.</summary>
    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It exited on its own.
        }
    }

    /// <summary>Kills the tool if it still runs, waits for it, and closes its pipes and process handle.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        Kill();
        await _process.WaitForExitAsync(CancellationToken.None);
        // A grandchild that escaped the kill could keep a pipe open; the pipes are closed regardless.
        await Task.WhenAny(Task.WhenAll(_stdinPump, _stdoutPump, _stderrPump), Task.Delay(TimeSpan.FromSeconds(5)));
        _stdoutReader.Dispose();
        _stderrReader.Dispose();
        _process.Dispose();
    }

    /// <summary>
    /// Disposes a <see cref="Process"/> that streams data through its pipes (tar, zstd, borg) together with the pipes
    /// it redirected: <see cref="Process.Dispose()"/> alone leaves a pipe the caller read open until finalization.
    /// </summary>
    public static void DisposeWithPipes(Process process)
    {
        ArgumentNullException.ThrowIfNull(process);
        ProcessStartInfo info = process.StartInfo;
        try
        {
            if (info.RedirectStandardInput)
            {
                process.StandardInput.Dispose();
            }
        }
        catch (IOException)
        {
            // The flush on close hit a closed pipe.
        }
        catch (InvalidOperationException)
        {
            // Never started.
        }
        DisposeReader(process, info.RedirectStandardOutput, p => p.StandardOutput);
        DisposeReader(process, info.RedirectStandardError, p => p.StandardError);
        process.Dispose();
    }

    private static void DisposeReader(Process process, bool redirected, Func<Process, StreamReader> reader)
    {
        if (!redirected)
        {
            return;
        }
        try
        {
            reader(process).Dispose();
        }
        catch (InvalidOperationException)
        {
            // Read in async mode (Process.Dispose closes those) or never started.
        }
    }

    /// <summary>The command line for messages, arguments with spaces quoted.</summary>
    public static string Describe(string fileName, IEnumerable<string> arguments)
    {
        var text = new StringBuilder(Path.GetFileName(fileName));
        foreach (string argument in arguments)
        {
            text.Append(' ');
            text.Append(argument.Contains(' ', StringComparison.Ordinal) || argument.Length == 0 ? $"'{argument}'" : argument);
        }
        return text.ToString();
    }

    /// <summary>Tool output cut to a length that fits a message (and a gRPC status detail).</summary>
    public static string Shorten(string text)
    {
        text = text.Trim();
        return text.Length <= MaxMessageErrorText ? text : text[..MaxMessageErrorText] + "...";
    }

    private static async Task FeedAsync(StreamWriter writer, string? text)
    {
        try
        {
            if (text is not null)
            {
                await writer.WriteAsync(text.AsMemory()).ConfigureAwait(false);
            }
        }
        catch (IOException)
        {
            // The tool exited without reading it all (EPIPE); its exit code tells.
        }
        finally
        {
            try
            {
                writer.Dispose();
            }
            catch (IOException)
            {
                // The flush on close hit a closed pipe.
            }
        }
    }

    private static async Task PumpAsync(StreamReader reader, StringBuilder? sink, int limit)
    {
        var buffer = new char[4096];
        try
        {
            int read;
            while ((read = await reader.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            {
                if (sink is null)
                {
                    continue;
                }
                lock (sink)
                {
                    int room = limit - sink.Length;
                    if (room > 0)
                    {
                        sink.Append(buffer, 0, Math.Min(read, room));
                    }
                }
            }
        }
        catch (Exception e) when (e is ObjectDisposedException or IOException)
        {
            // Closed by DisposeAsync while a grandchild still held the pipe.
        }
        finally
        {
            // At end of file the pipe is of no further use: close it now, not when the process object is collected.
            reader.Dispose();
        }
    }
}
