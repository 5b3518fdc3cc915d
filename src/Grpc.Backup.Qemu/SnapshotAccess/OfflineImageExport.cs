using System.Diagnostics;
using System.Net.Sockets;
using Grpc.Backup.Qemu.Internal;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Qemu;

/// <summary>
/// Read-only NBD export of a stopped VM's disk image through <c>qemu-nbd</c>, with its stable bitmap for
/// an incremental backup. Nothing writes to a stopped VM's image, so no fleecing is needed.
/// </summary>
/// <remarks>
/// Bitmaps are handled offline with <c>qemu-img bitmap</c> and mirror <see cref="VmSnapshotAccess"/>:
/// an inconsistent bitmap (qcow2 flag <c>in-use</c>, which qemu-nbd refuses) or a disabled one is removed
/// and the backup is full (New); once the provider committed (<see cref="SettleBitmapAsync"/>) a reused bitmap is
/// cleared and a new one created, so the next backup is incremental from this image; after a failure, or a commit
/// that failed or never came, nothing changes.
/// </remarks>
public sealed class OfflineImageExport : IAsyncDisposable
{
    private readonly OfflineImageExportOptions _options;
    private readonly ExternalProcess _server;
    private readonly Lock _gate = new();
    private Task? _finish;
    private Task? _settle;
    private bool _stored;

    private OfflineImageExport(OfflineImageExportOptions options, ExternalProcess server, SnapshotExport export)
    {
        _options = options;
        _server = server;
        Export = export;
    }

    public SnapshotExport Export { get; }

    public static async Task<OfflineImageExport> StartAsync(OfflineImageExportOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(options.ImagePath, nameof(options));
        ArgumentException.ThrowIfNullOrEmpty(options.Format, nameof(options));
        ArgumentException.ThrowIfNullOrEmpty(options.DeviceName, nameof(options));
        ArgumentException.ThrowIfNullOrEmpty(options.NbdSocketPath, nameof(options));
        ArgumentException.ThrowIfNullOrEmpty(options.BitmapName, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxClients, 1, nameof(options));
        string device = options.DeviceName;

        ImageInfo info = await SnapshotStep.RunAsync(device, "read image info", () => ImageInfo.ReadAsync(options.ImagePath, options.Format, cancellationToken));
        BitmapPlan plan = IsQcow2(options)
            ? BitmapDecision.Decide(options.Bitmap, info.Bitmaps.FirstOrDefault(b => string.Equals(b.Name, options.BitmapName, StringComparison.Ordinal)))
            : new BitmapPlan(BitmapOutcome.None, RemoveExisting: false); // only qcow2 can store a bitmap
        if (plan.RemoveExisting)
        {
            await SnapshotStep.RunAsync(device, "remove old bitmap", () => BitmapCommandAsync(options, "--remove", cancellationToken));
        }

        List<string> arguments = ["--read-only", "--format", options.Format, "--export-name", device, "--socket", options.NbdSocketPath, "--persistent", $"--shared={options.MaxClients}"];
        if (plan.Outcome == BitmapOutcome.Reuse)
        {
            arguments.AddRange(["--bitmap", options.BitmapName]);
        }

        arguments.AddRange(["--", options.ImagePath]);

        // A stale socket file would pass for a listening server.
        File.Delete(options.NbdSocketPath);
        ExternalProcess server = ExternalProcess.Start("qemu-nbd", arguments);
        var export = new OfflineImageExport(options, server, new SnapshotExport
        {
            DeviceName = device,
            ExportName = device,
            SizeBytes = info.VirtualSize,
            Bitmap = plan.Outcome,
            BitmapContext = plan.Outcome == BitmapOutcome.Reuse ? $"qemu:dirty-bitmap:{options.BitmapName}" : null,
            NbdSocketPath = options.NbdSocketPath,
        });
        try
        {
            await SnapshotStep.RunAsync(device, "start qemu-nbd", () => WaitUntilListeningAsync(server, options, cancellationToken));
        }
        catch
        {
            await export.FinishAsync(backupSucceeded: false, CancellationToken.None);
            throw;
        }

        return export;
    }

    /// <summary>
    /// Stops qemu-nbd; safe to call more than once. After <paramref name="backupSucceeded"/> the bitmap waits for
    /// <see cref="SettleBitmapAsync"/>.
    /// </summary>
    public Task FinishAsync(bool backupSucceeded, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return _finish ??= FinishCoreAsync(backupSucceeded);
        }
    }

    /// <summary>
    /// After a successful <see cref="FinishAsync"/>: moves the image's bitmap to this backup only if
    /// <paramref name="providerCommitted"/> (BackupCleanup(success=true) returned OK); otherwise leaves it as it was,
    /// so the next incremental still covers everything since the last commit. Safe to call more than once.
    /// </summary>
    public Task SettleBitmapAsync(bool providerCommitted, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_finish is null)
            {
                throw new InvalidOperationException("Finish first: the bitmap can only be settled once qemu-nbd is gone.");
            }

            return _settle ??= SettleCoreAsync(providerCommitted, cancellationToken);
        }
    }

    /// <summary>Finishes as a failed backup unless <see cref="FinishAsync"/> ran.</summary>
    public async ValueTask DisposeAsync() => await FinishAsync(backupSucceeded: false, CancellationToken.None);

    private async Task FinishCoreAsync(bool backupSucceeded)
    {
        // Read-only, so killing it cannot damage the image; it must be gone before qemu-img takes the write lock.
        await _server.DisposeAsync();
        File.Delete(_options.NbdSocketPath);
        _stored = backupSucceeded;
    }

    private async Task SettleCoreAsync(bool providerCommitted, CancellationToken cancellationToken)
    {
        await _finish!;
        if (!_stored || !providerCommitted || !IsQcow2(_options))
        {
            return;
        }

        // The provider now holds the image as it is, and a stopped VM changes nothing: the next
        // incremental starts from an empty bitmap that records from the VM's next start.
        string command = Export.Bitmap == BitmapOutcome.Reuse ? "--clear" : Export.Bitmap == BitmapOutcome.New ? "--add" : string.Empty;
        if (command.Length > 0)
        {
            await SnapshotStep.RunAsync(_options.DeviceName, "update bitmap", () => BitmapCommandAsync(_options, command, cancellationToken));
        }
    }

    private static async Task WaitUntilListeningAsync(ExternalProcess server, OfflineImageExportOptions options, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            if (server.HasExited)
            {
                throw new IOException($"qemu-nbd exited with {server.ExitCode}: {server.ErrorOutput}");
            }

            if (File.Exists(options.NbdSocketPath) && await CanConnectAsync(options.NbdSocketPath, cancellationToken))
            {
                return;
            }

            if (stopwatch.Elapsed > options.StartTimeout)
            {
                throw new TimeoutException($"qemu-nbd did not listen on {options.NbdSocketPath} within {options.StartTimeout}");
            }

            await Task.Delay(20, cancellationToken);
        }
    }

    /// <summary>The socket file appears at bind(); only a connect proves that listen() happened too.</summary>
    private static async Task<bool> CanConnectAsync(string path, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static Task<string> BitmapCommandAsync(OfflineImageExportOptions options, string command, CancellationToken cancellationToken)
        => ExternalProcess.RunAsync("qemu-img", ["bitmap", command, "-f", options.Format, options.ImagePath, options.BitmapName], cancellationToken);

    private static bool IsQcow2(OfflineImageExportOptions options) => string.Equals(options.Format, "qcow2", StringComparison.Ordinal);
}
