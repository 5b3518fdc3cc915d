using System.Globalization;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// The qemu-img operations the provider needs. Every call names the format (never probes), and runs in the archive's
/// directory, so relative backing paths resolve the same way qemu-img writes them.
/// </summary>
internal sealed class QemuImg(string path)
{
    /// <summary>Creates a qcow2 overlay of <paramref name="size"/> bytes backed by <paramref name="backing"/> (relative).</summary>
    public Task CreateOverlayAsync(string directory, string fileName, string backing, string backingFormat, long size,
        CancellationToken cancellationToken) =>
        RunAsync(
            // -u: the backing is not opened here (its chain is checked before and named explicitly when opened).
            ["create", "-q", "-u", "-f", "qcow2", "-F", backingFormat, "-b", backing, fileName, size.ToString(CultureInfo.InvariantCulture)],
            directory, cancellationToken);

    /// <summary>
    /// Safe-mode rebase: the image keeps its content while its backing changes to <paramref name="newBacking"/> (clusters
    /// that differ are copied in first), or, with null, it is flattened into a standalone image.
    /// </summary>
    public Task RebaseAsync(string directory, string fileName, string? newBacking, string? newBackingFormat,
        CancellationToken cancellationToken) =>
        RunAsync(
            newBacking is null
                ? ["rebase", "-q", "-f", "qcow2", "-b", "", fileName]
                : ["rebase", "-q", "-f", "qcow2", "-F", newBackingFormat!, "-b", newBacking, fileName],
            directory, cancellationToken);

    /// <summary>Runs qemu-img in <paramref name="directory"/>; a failure is an <see cref="ExternalProcessException"/> with its stderr.</summary>
    private Task<string> RunAsync(IReadOnlyList<string> arguments, string? directory, CancellationToken cancellationToken) =>
        ExternalProcess.RunAsync(path, arguments, cancellationToken, workingDirectory: directory ?? "/");
}
