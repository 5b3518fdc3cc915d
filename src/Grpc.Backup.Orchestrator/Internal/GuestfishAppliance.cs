using System.Diagnostics;
using System.Globalization;
using System.Text;
using Grpc.Backup.Protocol;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// One libguestfs appliance (a throwaway VM; <c>LIBGUESTFS_BACKEND=direct</c>) kept by a <c>guestfish --listen --ro</c>
/// server; every command is a <c>guestfish --remote=PID</c> process with an argument list (no shell, no quoting), one at
/// a time. A failed command would end the server (guestfish exits on the first error when not interactive), so each is
/// sent with guestfish's <c>-</c> prefix (go on after an error) and has failed when the server wrote to its stderr
/// (a private file) while it ran: the client's exit status is then 0 either way. Guest file systems are only ever mounted inside the appliance, never by the host
/// kernel. Everything the appliance prints comes from untrusted guest data and is parsed as such.
/// </summary>
internal sealed class GuestfishAppliance : IAsyncDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(5);
    private readonly int _pid;
    private readonly string _errorFile;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private int _disposed;

    private GuestfishAppliance(int pid, string errorFile)
    {
        _pid = pid;
        _errorFile = errorFile;
    }

    /// <summary>
    /// Starts the server. It forks and keeps the stdout it was given for its life, so it gets files in
    /// <paramref name="directory"/> (private, 0700), never this process's pipes.
    /// </summary>
    public static async Task<GuestfishAppliance> StartAsync(string directory, CancellationToken cancellationToken)
    {
        string pidFile = Path.Combine(directory, "guestfish.out");
        string errorFile = Path.Combine(directory, "guestfish.err");
        await ExternalProcess.RunAsync("sh", ["-c", "LIBGUESTFS_BACKEND=direct exec guestfish --listen --ro >\"$1\" 2>\"$2\" </dev/null", "sh", pidFile, errorFile],
            cancellationToken, TimeSpan.FromMinutes(1));
        // "GUESTFISH_PID=1234; export GUESTFISH_PID"
        string line = (await File.ReadAllTextAsync(pidFile, cancellationToken)).Split(';')[0];
        if (!line.StartsWith("GUESTFISH_PID=", StringComparison.Ordinal)
            || !int.TryParse(line["GUESTFISH_PID=".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
        {
            throw new BackupException($"guestfish --listen did not name its server: {ExternalProcess.Shorten(line)}");
        }
        return new GuestfishAppliance(pid, errorFile);
    }

    /// <summary>Runs one guestfish command in the server; its stdout.</summary>
    /// <exception cref="BackupException">The command failed (the message is the appliance's first error line).</exception>
    public async Task<string> RunAsync(IReadOnlyList<string> command, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            long before = ErrorLength();
            string output = await ExternalProcess.RunAsync("guestfish", Remote(command), cancellationToken, CommandTimeout);
            ThrowIfFailed(command[0], before);
            return output;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Runs one guestfish command whose output file is <c>-</c> (<c>tar-out</c>, <c>download</c>) and hands its stdout
    /// to <paramref name="read"/>; whether the command failed is known once its output ended.
    /// </summary>
    public async Task<T> ReadOutputAsync<T>(IReadOnlyList<string> command, Func<Stream, Task<T>> read, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            long before = ErrorLength();
            var info = new ProcessStartInfo("guestfish");
            foreach (string argument in Remote(command))
            {
                info.ArgumentList.Add(argument);
            }
            T result;
            try
            {
                await using Stream output = ProcessOutputStream.Start(info, $"guestfish {command[0]} failed");
                result = await read(output);
                // Drained, so the command has finished in the server before its stderr is judged.
                await output.CopyToAsync(Stream.Null, cancellationToken);
            }
            catch
            {
                // The reader stopped early: the server may still be writing the error of its cut output. A cheap
                // command after it (the server runs one at a time) lets that error land before the next command looks.
                await ExternalProcess.RunAsync("guestfish", Remote(["get-verbose"]), CancellationToken.None, CommandTimeout);
                throw;
            }
            ThrowIfFailed(command[0], before);
            return result;
        }
        finally
        {
            _gate.Release();
        }
    }

    private string[] Remote(IReadOnlyList<string> command) => ["--remote=" + _pid.ToString(CultureInfo.InvariantCulture), "--", "-" + command[0], .. command.Skip(1)];

    private long ErrorLength() => new FileInfo(_errorFile).Length;

    private void ThrowIfFailed(string command, long before)
    {
        using var errors = new FileStream(_errorFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        if (errors.Length <= before)
        {
            return;
        }
        errors.Position = before;
        var buffer = new byte[(int)Math.Min(errors.Length - before, 4096)];
        errors.ReadExactly(buffer);
        string first = Encoding.UTF8.GetString(buffer).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "";
        throw new BackupException(ProviderText.Sanitize($"{command}: {first}"));
    }

    /// <summary>Shuts the appliance down (<c>exit</c>), or kills the server when it does not answer.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        try
        {
            await ExternalProcess.RunAsync("guestfish", ["--remote=" + _pid.ToString(CultureInfo.InvariantCulture), "--", "exit"], CancellationToken.None,
                TimeSpan.FromMinutes(1));
        }
        catch (ExternalProcessException)
        {
            try
            {
                // Our own child's server (it forked from the guestfish this process started): ended by its id.
                using Process server = Process.GetProcessById(_pid);
                server.Kill(entireProcessTree: true);
            }
            catch (ArgumentException)
            {
                // Already gone.
            }
        }
        _gate.Dispose();
    }
}
