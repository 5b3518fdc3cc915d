using System.Globalization;
using System.IO.Pipes;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.Containers;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Provider;

/// <summary>
/// The worker side of the container mechanism DIRECTORY: a provider's own program that the host runs inside the
/// container's user namespace, as the container's root, over a consistent view of the container's files. This type
/// reads what the host passed (protos/README.md "Container worker") and gives the worker its one way back to the
/// provider: a pipe whose read end travels to the provider on the sideband connection at fd 3.
/// </summary>
/// <example>
/// <code>
/// var worker = ContainerWorker.FromEnvironment();
/// await using Stream toProvider = await worker.OpenStreamToProviderAsync(ct);
/// // write the tree (e.g. tar's output through worker.CopyAsync) into toProvider
/// </code>
/// </example>
public sealed class ContainerWorker
{
    private ContainerWorker(FdToken token, string backupId, string view, IReadOnlyList<string> sources, IReadOnlyList<string> excludePatterns,
        ulong bytesPerSecond)
    {
        Token = token;
        BackupId = backupId;
        View = view;
        Sources = sources;
        ExcludePatterns = excludePatterns;
        BytesPerSecond = bytesPerSecond;
    }

    /// <summary>The token the provider's BackupContainer call waits for (BackupContainerRequest.worker_token).</summary>
    public FdToken Token { get; }

    public string BackupId { get; }

    /// <summary>The view's root directory.</summary>
    public string View { get; }

    /// <summary>Paths relative to <see cref="View"/> that are backed up: "." and included mount points.</summary>
    public IReadOnlyList<string> Sources { get; }

    /// <summary>vzdump exclusion patterns; <see cref="TarArguments"/> applies them.</summary>
    public IReadOnlyList<string> ExcludePatterns { get; }

    /// <summary>The job's bandwidth limit in bytes per second (0: none); <see cref="CopyAsync"/> keeps to it.</summary>
    public ulong BytesPerSecond { get; }

    /// <summary>Reads the worker's environment.</summary>
    /// <exception cref="InvalidOperationException">Not started by a host as a container worker, or a variable is malformed.</exception>
    public static ContainerWorker FromEnvironment()
    {
        string Required(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException($"{name} is not set: this program runs as a container worker started by the backup host");
        FdToken token;
        ulong bytesPerSecond;
        try
        {
            token = FdToken.FromBytes(Convert.FromHexString(Required(ContainerWorkerEnvironment.Token)));
            bytesPerSecond = ulong.Parse(Required(ContainerWorkerEnvironment.BytesPerSecond), NumberStyles.None, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
        {
            throw new InvalidOperationException($"malformed container worker environment: {e.Message}", e);
        }
        string view = Required(ContainerWorkerEnvironment.View);
        if (!Path.IsPathFullyQualified(view))
        {
            throw new InvalidOperationException($"{ContainerWorkerEnvironment.View} '{view}' is not an absolute path");
        }
        return new ContainerWorker(token, Required(ContainerWorkerEnvironment.BackupId), view,
            ContainerWorkerEnvironment.SplitLines(Required(ContainerWorkerEnvironment.Sources)),
            ContainerWorkerEnvironment.SplitLines(Environment.GetEnvironmentVariable(ContainerWorkerEnvironment.ExcludePatterns)),
            bytesPerSecond);
    }

    /// <summary>
    /// GNU tar arguments that write a pax archive of the view (container-view numeric owners, xattrs, ACLs, sparse
    /// files, the exclusions) to stdout, the same archive the host's TAR_STREAM produces.
    /// </summary>
    public IReadOnlyList<string> TarArguments(params IEnumerable<string> extraOptions) =>
        TarCreateArguments.Build(View, Protocol.Containers.ExcludePatterns.ToTarArguments(ExcludePatterns), extraOptions);

    /// <summary>
    /// Creates a pipe, sends its read end (FdKind PIPE) to the provider under <see cref="Token"/> on fd 3, and returns
    /// the write end. The provider's BackupContainer call reads it to EOF: dispose the stream when the tree is written.
    /// </summary>
    public async Task<Stream> OpenStreamToProviderAsync(CancellationToken cancellationToken)
    {
        var pipe = new AnonymousPipeServerStream(PipeDirection.Out, HandleInheritability.None);
        try
        {
            using var sideband = new Socket(new SafeSocketHandle(ContainerWorkerEnvironment.SidebandFd, ownsHandle: true));
            await FdSidebandHandoff.SendAsync(sideband, Token, [new FdToSend(pipe.ClientSafePipeHandle, FdKind.Pipe)], cancellationToken);
            // Our copy of the read end goes now: the provider holds the only one, so its going away breaks our writes.
            pipe.DisposeLocalCopyOfClientHandle();
            return pipe;
        }
        catch
        {
            await pipe.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Sends an existing pipe's read end (e.g. a child's stdout, <see cref="System.Diagnostics.Process.StandardOutput"/>)
    /// to the provider as the stream, so the bytes never pass through this process. Only for an unlimited
    /// <see cref="BytesPerSecond"/>: nothing paces a pipe the worker does not copy.
    /// </summary>
    public async Task SendPipeToProviderAsync(SafeHandle readEnd, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(readEnd);
        if (BytesPerSecond != 0)
        {
            throw new InvalidOperationException("a bandwidth limit is set: copy the stream with CopyAsync so it is paced");
        }
        using var sideband = new Socket(new SafeSocketHandle(ContainerWorkerEnvironment.SidebandFd, ownsHandle: true));
        await FdSidebandHandoff.SendAsync(sideband, Token, [new FdToSend(readEnd, FdKind.Pipe)], cancellationToken);
    }

    /// <summary>Copies <paramref name="source"/> to <paramref name="destination"/> within <see cref="BytesPerSecond"/>; returns the bytes copied.</summary>
    public async Task<long> CopyAsync(Stream source, Stream destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        var throttle = new BandwidthThrottle(BytesPerSecond);
        byte[] buffer = new byte[throttle.ChunkSize(256 * 1024)];
        long total = 0;
        int read;
        while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
        {
            await throttle.WaitAsync(read, cancellationToken);
            await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            total += read;
        }
        return total;
    }
}
