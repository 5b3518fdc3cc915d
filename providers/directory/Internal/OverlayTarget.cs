using Grpc.Backup.Nbd;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// An incremental backup's image: a qcow2 overlay on the device's previous image, written through a private qemu-nbd
/// (one process per volume, not one per extent). Unchanged clusters resolve through the backing chain, so the
/// archive restores on its own.
/// </summary>
internal sealed class OverlayTarget : IVolumeTarget
{
    private const string ExportName = "overlay";
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(60);

    private readonly QemuNbdServer _server;
    private readonly NbdClient _client;
    private readonly byte[] _zeros;

    private OverlayTarget(QemuNbdServer server, NbdClient client)
    {
        _server = server;
        _client = client;
        _zeros = _client.Export.CanWriteZeroes ? [] : new byte[Math.Min(client.MaxRequestSize, 1024 * 1024)];
    }

    /// <remarks>
    /// The older images are the repository's, which is untrusted storage: their chain is checked by the SDK's
    /// <see cref="Provider.QemuImageChain"/> (plain files inside <paramref name="guestDirectory"/>, formats recorded)
    /// and every link is named to qemu-nbd with the file driver, so a tampered backing (a host file, blkdebug:, json:,
    /// an NBD socket) never feeds the new archive. The overlay is created without opening its backing (-u).
    /// </remarks>
    public static async Task<OverlayTarget> CreateAsync(QemuTools tools, string directory, string fileName, string backing,
        string backingFormat, long size, int requestSize, int depth, string guestDirectory, CancellationToken cancellationToken)
    {
        Provider.QemuImageChain chain;
        try
        {
            chain = await Provider.QemuImageChain.ReadAsync(tools.QemuImgPath, Path.GetFullPath(backing, directory), backingFormat, guestDirectory,
                expectedSize: null, cancellationToken);
        }
        catch (InvalidDataException e)
        {
            // A repository the provider cannot use as it is: a storage failure, like a missing file.
            throw new IOException($"the previous backup's image chain is refused: {e.Message}", e);
        }
        await tools.Img.CreateOverlayAsync(directory, fileName, backing, backingFormat, size, cancellationToken);
        QemuNbdServer server = await QemuNbdServer.StartAsync(tools.QemuNbdPath, tools.RuntimeDirectory,
            ["--discard=unmap", "--cache=writeback"], ExportName, chain.OverlayImageSpec(Path.Join(directory, fileName)),
            cancellationToken, workingDirectory: directory);
        try
        {
            var options = new NbdClientOptions { MaxRequestSize = requestSize, MaxInFlightRequests = Math.Max(16, depth * 2) };
            NbdClient client = await NbdClient.ConnectAsync(await server.ConnectAsync(cancellationToken), ExportName, options,
                cancellationToken);
            if (client.Export.Size != size)
            {
                await client.DisposeAsync();
                throw new IOException($"qemu-nbd serves the new overlay with {client.Export.Size} bytes, not {size}");
            }
            return new OverlayTarget(server, client);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
        _client.WriteAsync(offset, data, NbdCommandFlags.None, cancellationToken);

    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken) =>
        _client.ReadAsync(offset, buffer, cancellationToken);

    public async ValueTask WriteZeroesAsync(long offset, long length, CancellationToken cancellationToken)
    {
        if (_client.Export.CanWriteZeroes)
        {
            // A zero cluster in the overlay: it reads as zero instead of falling through to the older image.
            await _client.WriteZeroesAsync(offset, length, NbdCommandFlags.None, cancellationToken);
            return;
        }
        for (long done = 0; done < length; done += _zeros.Length)
        {
            await _client.WriteAsync(offset + done, _zeros.AsMemory(0, (int)Math.Min(_zeros.Length, length - done)),
                NbdCommandFlags.None, cancellationToken);
        }
    }

    public async Task FinishAsync(CancellationToken cancellationToken)
    {
        await _client.FlushAsync(cancellationToken);
        // Disconnecting makes qemu-nbd (without --persistent) close the image and exit; a clean exit means the qcow2
        // metadata is on disk.
        await _client.DisposeAsync();
        await _server.WaitForCleanExitAsync(ExitTimeout, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await _client.DisposeAsync();
        await _server.DisposeAsync();
    }
}
