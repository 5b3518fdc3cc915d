using System.Diagnostics;
using System.Net.Sockets;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// A qemu-nbd process serving one image on a Unix socket in a private directory (mode 0700), so no other user can
/// reach the export. Disposing kills it (and anything it started) and removes the directory, on every path.
/// </summary>
internal sealed class QemuNbdServer : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    private readonly ExternalProcess _process;
    private readonly string _directory;
    private Socket? _firstConnection;

    private QemuNbdServer(ExternalProcess process, string directory, string socketPath, string exportName)
    {
        _process = process;
        _directory = directory;
        SocketPath = socketPath;
        ExportName = exportName;
    }

    public string SocketPath { get; }

    public string ExportName { get; }

    public int ProcessId => _process.Id;

    /// <summary>What qemu-nbd wrote to stderr so far (bounded).</summary>
    public string ErrorOutput => ExternalProcess.Shorten(_process.ErrorOutput);

    /// <summary>
    /// Starts <c>qemu-nbd OPTIONS -x EXPORT -k SOCKET IMAGE</c> and waits until it accepts a connection, which is kept
    /// for the first <see cref="ConnectAsync"/>: without --persistent, qemu-nbd exits when its first client leaves.
    /// IMAGE is a path (run in its directory) or, with <paramref name="workingDirectory"/> set, a json: image specification.
    /// </summary>
    public static async Task<QemuNbdServer> StartAsync(string qemuNbd, string runtimeDirectory, IEnumerable<string> options,
        string exportName, string imagePath, CancellationToken cancellationToken, string? workingDirectory = null)
    {
        string directory = CreatePrivateDirectory(runtimeDirectory);
        string socketPath = Path.Join(directory, "nbd.sock");
        // stdout is read and dropped: the provider's own stdout is reserved by the protocol.
        ExternalProcess process = ExternalProcess.Start(qemuNbd, [.. options, "-x", exportName, "-k", socketPath, imagePath],
            new ExternalProcessOptions { WorkingDirectory = workingDirectory ?? Path.GetDirectoryName(imagePath) });
        var server = new QemuNbdServer(process, directory, socketPath, exportName);
        try
        {
            server._firstConnection = await server.WaitUntilListeningAsync(cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>A connected stream socket to the export (the NBD handshake has not run on it).</summary>
    public async Task<Socket> ConnectAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _firstConnection, null) is { } first)
        {
            return first;
        }
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Waits for qemu-nbd to exit on its own (after its last client disconnected), which closes the image cleanly;
    /// throws with its stderr if it fails or takes too long.
    /// </summary>
    public async Task WaitForCleanExitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await _process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ExternalProcessException($"qemu-nbd did not exit within {timeout} after its client left: {ErrorOutput}", -1, ErrorOutput);
        }
        if (_process.ExitCode != 0)
        {
            throw new ExternalProcessException($"qemu-nbd exited with {_process.ExitCode}: {ErrorOutput}", _process.ExitCode, ErrorOutput);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Interlocked.Exchange(ref _firstConnection, null)?.Dispose();
        await _process.DisposeAsync();
        try
        {
            System.IO.Directory.Delete(_directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    /// <summary>A fresh directory only this user can enter: the socket inside is reachable by no one else.</summary>
    private static string CreatePrivateDirectory(string parent)
    {
        string directory = Path.Join(parent,
            "gbd-qemu-nbd-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8)));
        if (Path.Exists(directory))
        {
            throw new IOException($"{directory} exists already");
        }
        System.IO.Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return directory;
    }

    private async Task<Socket> WaitUntilListeningAsync(CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                await _process.WaitForExitAsync(cancellationToken);
                throw new ExternalProcessException($"qemu-nbd exited with {_process.ExitCode} before it listened: {ErrorOutput}", _process.ExitCode,
                    ErrorOutput);
            }
            if (File.Exists(SocketPath))
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), cancellationToken);
                    return socket;
                }
                catch (SocketException)
                {
                    socket.Dispose();
                }
            }
            if (deadline.Elapsed > StartTimeout)
            {
                throw new ExternalProcessException($"qemu-nbd did not listen within {StartTimeout}: {ErrorOutput}", -1, ErrorOutput);
            }
            await Task.Delay(10, cancellationToken);
        }
    }
}
