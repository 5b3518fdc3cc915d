using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// One running borg command. stderr carries <c>--log-json</c> records; the last error's msgid and message are kept
/// for <see cref="BorgException"/>, and warnings are collected for the task log. Stopping it sends SIGTERM first so
/// borg rolls its transaction back and releases its lock, and SIGKILL only if it does not exit in time (borg's
/// repository is transactional, so even that does not corrupt it).
/// </summary>
internal sealed class BorgProcess : IAsyncDisposable
{
    private static readonly TimeSpan TerminateGrace = TimeSpan.FromSeconds(15);
    private const int MaxStderrLines = 200;

    private readonly Process _process;
    private readonly string _what;
    private readonly Task _stderr;
    private readonly List<string> _lines = [];
    private string? _errorId;
    private string? _errorMessage;
    private readonly List<string> _remoteLines = [];
    private int _exitObserved;

    private BorgProcess(Process process, string what)
    {
        _process = process;
        _what = what;
        _stderr = Task.Run(ReadStderrAsync);
    }

    public int Id => _process.Id;

    /// <summary>borg's stdin, when the command was started with one (import-tar).</summary>
    public Stream StandardInput => _process.StandardInput.BaseStream;

    /// <summary>
    /// Grows borg's stdin pipe (default 64 KiB) so a disk image is handed over in fewer, larger steps: fewer context
    /// switches between the provider writing and borg reading. Best effort: the kernel caps it at
    /// /proc/sys/fs/pipe-max-size for an unprivileged process, and a smaller pipe only costs speed.
    /// </summary>
    public void GrowInputPipe(int bytes)
    {
        if (StandardInput is System.IO.Pipes.PipeStream pipe)
        {
            _ = Interop.LibC.Fcntl((int)pipe.SafePipeHandle.DangerousGetHandle(), Interop.LibC.FSetPipeSize, bytes);
        }
    }

    /// <summary>borg's stdout: JSON results, or file contents for <c>extract --stdout</c>.</summary>
    public Stream StandardOutput => _process.StandardOutput.BaseStream;

    /// <summary>Warnings borg logged (shown in the task log).</summary>
    public IReadOnlyList<string> Warnings { get; private set; } = [];

    public static BorgProcess Start(ProcessStartInfo startInfo, string what)
    {
        var process = new Process { StartInfo = startInfo };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            process.Dispose();
            throw new BorgException($"cannot run {startInfo.FileName}: {e.Message}", 127, null);
        }
        return new BorgProcess(process, what);
    }

    /// <summary>Waits for borg to exit; exit code 1 (warnings) is success. Cancellation stops borg.</summary>
    public async Task WaitAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            await StopAsync();
            throw;
        }
        await _stderr;
        Interlocked.Exchange(ref _exitObserved, 1);
        if (_process.ExitCode >= 2 || _process.ExitCode < 0)
        {
            string detail = _errorMessage ?? string.Join(" | ", _lines.TakeLast(5));
            if (_remoteLines.Count > 0)
            {
                // For ssh:// repositories the cause is what ssh or the server said ("Connection refused"), which borg
                // logs as a warning before its generic "Connection closed by remote host".
                detail += " (" + string.Join(" | ", _remoteLines) + ")";
            }
            throw new BorgException($"borg {_what} failed (exit code {_process.ExitCode}): {detail}", _process.ExitCode, _errorId);
        }
    }

    /// <summary>SIGTERM, then SIGKILL after a grace period. Safe to call when it already exited.</summary>
    public async Task StopAsync()
    {
        if (_process.HasExited)
        {
            return;
        }
        _ = Interop.LibC.Kill(_process.Id, Interop.LibC.SigTerm);
        using var grace = new CancellationTokenSource(TerminateGrace);
        try
        {
            await _process.WaitForExitAsync(grace.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill();
            await _process.WaitForExitAsync(CancellationToken.None);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Volatile.Read(ref _exitObserved) == 0)
        {
            await StopAsync();
        }
        try
        {
            await _stderr;
        }
        catch (IOException)
        {
        }
        // Process.Dispose leaves the redirected pipes to whoever took them: close them now, not at finalization.
        ExternalProcess.DisposeWithPipes(_process);
    }

    private async Task ReadStderrAsync()
    {
        var warnings = new List<string>();
        StreamReader reader = _process.StandardError;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (_lines.Count < MaxStderrLines)
            {
                _lines.Add(line);
            }
            if (!line.StartsWith('{'))
            {
                continue;
            }
            try
            {
                using var record = JsonDocument.Parse(line);
                JsonElement root = record.RootElement;
                if (!root.TryGetProperty("type", out JsonElement type) || type.GetString() != "log_message")
                {
                    continue;
                }
                string level = root.TryGetProperty("levelname", out JsonElement l) ? l.GetString() ?? "" : "";
                string message = root.TryGetProperty("message", out JsonElement m) ? m.GetString() ?? "" : "";
                if (level is "ERROR" or "CRITICAL")
                {
                    _errorMessage = message;
                    _errorId = root.TryGetProperty("msgid", out JsonElement id) ? id.GetString() : _errorId;
                }
                else if (level == "WARNING" && warnings.Count < 50)
                {
                    warnings.Add(message);
                    if (message.StartsWith("Remote: ", StringComparison.Ordinal) && _remoteLines.Count < 3)
                    {
                        _remoteLines.Add(message);
                    }
                }
            }
            catch (JsonException)
            {
            }
        }
        Warnings = warnings;
    }

    /// <summary>Reads stdout to the end as text (JSON results), then waits for the exit.</summary>
    public async Task<string> ReadOutputAsync(CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(StandardOutput, Encoding.UTF8, leaveOpen: true);
        string output;
        try
        {
            output = await reader.ReadToEndAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            await StopAsync();
            throw;
        }
        await WaitAsync(cancellationToken);
        return output;
    }
}
