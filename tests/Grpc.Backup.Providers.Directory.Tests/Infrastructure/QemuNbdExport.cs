using System.Net.Sockets;

namespace Grpc.Backup.Providers.Directory.Tests.Infrastructure;

/// <summary>
/// A qemu-nbd process standing in for the host's point-in-time export of one disk. The test connects sockets to it
/// and passes them to the provider, as a host does.
/// </summary>
internal sealed class QemuNbdExport : IAsyncDisposable
{
    private readonly ChildProcess _process;

    private QemuNbdExport(ChildProcess process, string socketPath, string exportName)
    {
        _process = process;
        SocketPath = socketPath;
        ExportName = exportName;
    }

    public string SocketPath { get; }

    public string ExportName { get; }

    /// <summary>A writable raw export (TRIM punches holes into <paramref name="image"/>).</summary>
    public static Task<QemuNbdExport> WritableRawAsync(string image, string socketPath, string exportName = "drive-scsi0") =>
        StartAsync(socketPath, exportName, ["-f", "raw", "--discard=unmap", "--persistent", "--shared=4", image]);

    /// <summary>A read-only raw export: it refuses TRIM.</summary>
    public static Task<QemuNbdExport> ReadOnlyRawAsync(string image, string socketPath, string exportName = "drive-scsi0") =>
        StartAsync(socketPath, exportName, ["-r", "-f", "raw", "--persistent", "--shared=4", image]);

    /// <summary>A read-only qcow2 export, with the dirty bitmap <paramref name="bitmap"/> as a meta context when given.</summary>
    public static Task<QemuNbdExport> ReadOnlyQcow2Async(string image, string socketPath, string? bitmap, string exportName = "drive-scsi0") =>
        StartAsync(socketPath, exportName,
            ["-r", "-f", "qcow2", .. bitmap is null ? Array.Empty<string>() : ["-B", bitmap], "--persistent", "--shared=4", image]);

    /// <summary>
    /// Connects to the export. qemu-nbd's socket file appears at bind(), just before listen(): a refused connect in
    /// that window took no connection from it and is retried (for up to 20 s of the process's start-up).
    /// </summary>
    public async Task<Socket> ConnectAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath));
                return socket;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused && DateTime.UtcNow < deadline)
            {
                socket.Dispose();
                await Task.Delay(20);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
    }

    public ValueTask DisposeAsync() => _process.DisposeAsync();

    private static async Task<QemuNbdExport> StartAsync(string socketPath, string exportName, string[] arguments)
    {
        ChildProcess process = ChildProcess.Start("qemu-nbd", ["-x", exportName, "-k", socketPath, .. arguments]);
        try
        {
            await process.WaitForFileAsync(socketPath, TimeSpan.FromSeconds(20));
            return new QemuNbdExport(process, socketPath, exportName);
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }
}
