using System.Diagnostics;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Backup.Transport;
using Grpc.Core;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// One BackupContainer call: claims the tree's stream (the host's TAR_STREAM pipe, or the pipe our own worker sent
/// under the worker token), stores it as <c>rootfs.tar.zst</c> beside the configurations, and records it in the
/// manifest as the archive's one volume. A TAR_STREAM arrives uncompressed and is compressed here with zstd; the
/// worker's stream arrives compressed. A plain tar stream that ends without tar's end-of-archive blocks is
/// DATA_LOSS: the host's tar died and EOF came early.
/// </summary>
internal sealed class ContainerBackupRun(ArchiveStore store, GuestLocks locks, ProviderFds fds, TimeProvider timeProvider)
{
    public const string TreeDevice = "rootfs";
    public const string TreeFileName = "rootfs.tar.zst";

    private const int BufferSize = 256 * 1024;
    private const int TarBlock = 512;

    public async Task RunAsync(BackupSession session, BackupContainerRequest request, IServerStreamWriter<BackupContainerEvent> stream,
        CancellationToken cancellationToken)
    {
        FdRef source = request.SourceCase switch
        {
            BackupContainerRequest.SourceOneofCase.TarStream => request.TarStream,
            BackupContainerRequest.SourceOneofCase.WorkerToken when request.WorkerToken.Length == FdToken.Size =>
                new FdRef { TransferToken = request.WorkerToken, Index = 0, Kind = Protocol.V1.FdKind.Pipe },
            _ => throw ContractErrors.InvalidArgument("BackupContainer needs tar_stream or a 16-byte worker_token"),
        };
        bool compressed = request.SourceCase == BackupContainerRequest.SourceOneofCase.WorkerToken;
        using PassedFd passed = await fds.ClaimAsync(source, cancellationToken);
        if (passed.Kind != Transport.FdKind.Pipe)
        {
            throw ProviderErrors.Create(ErrorReason.FdKindMismatch, "the container's tree must arrive on a pipe");
        }
        using IDisposable guestLock = await locks.AcquireAsync(session.GuestId, cancellationToken);
        StoreConfigurations(session, request);
        string path = store.FileIn(session.Archive, TreeFileName);
        long received;
        await using (var input = new FileStream(passed.TakeFileHandle(), FileAccess.Read, bufferSize: 0))
        {
            received = compressed
                ? await StoreAsync(input, path, stream, cancellationToken)
                : await CompressAsync(input, path, stream, cancellationToken);
        }
        session.Volumes.Add(new ManifestVolume
        {
            Device = TreeDevice,
            SizeBytes = received,
            File = TreeFileName,
            Format = ManifestVolume.FormatTarZst,
            BitmapMode = "none",
            BytesRead = received,
            BytesStored = new FileInfo(path).Length,
        });
        WriteManifest(session, request);
    }

    private async Task<long> StoreAsync(Stream input, string path, IServerStreamWriter<BackupContainerEvent> stream, CancellationToken cancellationToken)
    {
        await using var output = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        return await CopyAsync(input, output, stream, cancellationToken);
    }

    private async Task<long> CompressAsync(Stream input, string path, IServerStreamWriter<BackupContainerEvent> stream, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo("zstd") { RedirectStandardInput = true, RedirectStandardError = true };
        foreach (string argument in (string[])["-q", "-3", "-T0", "-o", path])
        {
            info.ArgumentList.Add(argument);
        }
        Process zstd = Process.Start(info) ?? throw new IOException("cannot start zstd");
        Task<string> errors = zstd.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            var tail = new TarTail();
            long received;
            await using (Stream toZstd = zstd.StandardInput.BaseStream)
            {
                received = await CopyAsync(input, toZstd, stream, cancellationToken, tail);
            }
            await zstd.WaitForExitAsync(cancellationToken);
            if (zstd.ExitCode != 0)
            {
                throw ContractErrors.FromStorage(new IOException((await errors).Trim()), "compressing the container's tree");
            }
            if (!tail.EndsArchive(received))
            {
                throw ProviderErrors.Create(StatusCode.DataLoss,
                    $"the tar stream ended after {received} bytes without tar's end-of-archive blocks: it is truncated");
            }
            return received;
        }
        finally
        {
            if (!zstd.HasExited)
            {
                zstd.Kill();
                await zstd.WaitForExitAsync(CancellationToken.None);
            }
            ExternalProcess.DisposeWithPipes(zstd);
        }
    }

    private async Task<long> CopyAsync(Stream input, Stream output, IServerStreamWriter<BackupContainerEvent> stream, CancellationToken cancellationToken,
        TarTail? tail = null)
    {
        byte[] buffer = new byte[BufferSize];
        long total = 0;
        long lastReport = timeProvider.GetTimestamp();
        int read;
        try
        {
            while ((read = await input.ReadAsync(buffer, cancellationToken)) > 0)
            {
                await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                tail?.Add(buffer.AsSpan(0, read));
                total += read;
                if (timeProvider.GetElapsedTime(lastReport) > TimeSpan.FromSeconds(1))
                {
                    lastReport = timeProvider.GetTimestamp();
                    await stream.WriteAsync(new BackupContainerEvent { Progress = new Progress { DeviceName = TreeDevice, BytesDone = (ulong)total } },
                        cancellationToken);
                }
            }
            await output.FlushAsync(cancellationToken);
        }
        catch (IOException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw ContractErrors.FromStorage(e, "storing the container's tree");
        }
        return total;
    }

    private void StoreConfigurations(BackupSession session, BackupContainerRequest request)
    {
        try
        {
            AtomicFile.Write(store.FileIn(session.Archive, ArchiveStore.GuestConfigFileName), request.GuestConfig.Span);
            if (request.HasFirewallConfig)
            {
                AtomicFile.Write(store.FileIn(session.Archive, ArchiveStore.FirewallConfigFileName), request.FirewallConfig.Span);
            }
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw ContractErrors.FromStorage(e, "storing the container's configuration");
        }
    }

    private void WriteManifest(BackupSession session, BackupContainerRequest request)
    {
        ArchiveManifest manifest = store.TryReadManifest(session.Archive)
            ?? throw ContractErrors.FromStorage(new IOException("the archive's manifest disappeared"), "updating the manifest");
        manifest.HasFirewallConfig = request.HasFirewallConfig;
        manifest.Volumes.Clear();
        manifest.Volumes.AddRange(session.Volumes);
        store.WriteManifest(session.Archive, manifest);
    }

    /// <summary>The last 1 KiB of a tar stream: a complete archive ends, on a block boundary, with two zero blocks.</summary>
    private sealed class TarTail
    {
        private readonly byte[] _last = new byte[2 * TarBlock];
        private int _filled;

        public void Add(ReadOnlySpan<byte> data)
        {
            if (data.Length >= _last.Length)
            {
                data[^_last.Length..].CopyTo(_last);
                _filled = _last.Length;
                return;
            }
            int keep = Math.Min(_filled, _last.Length - data.Length);
            _last.AsSpan(_filled - keep, keep).CopyTo(_last);
            data.CopyTo(_last.AsSpan(keep));
            _filled = keep + data.Length;
        }

        public bool EndsArchive(long length) =>
            length % TarBlock == 0 && _filled == _last.Length && !_last.AsSpan().ContainsAnyExcept((byte)0);
    }
}
