using System.Globalization;
using System.Text.Json;
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
            ["create", "-q", "-f", "qcow2", "-F", backingFormat, "-b", backing, fileName, size.ToString(CultureInfo.InvariantCulture)],
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

    /// <summary>
    /// The absolute path and format of every image in the backing chain of <paramref name="imagePath"/>, read with
    /// -U (images in use may be inspected) and checked: no external data file, no encryption.
    /// </summary>
    public async Task<IReadOnlyList<(string File, string Format)>> ReadChainAsync(string imagePath, string format,
        CancellationToken cancellationToken)
    {
        string json = await RunAsync(
            ["info", "-U", "--backing-chain", "--output=json", "-f", format, imagePath], Path.GetDirectoryName(imagePath),
            cancellationToken);
        var chain = new List<(string, string)>();
        using JsonDocument document = JsonDocument.Parse(json);
        foreach (JsonElement image in document.RootElement.EnumerateArray())
        {
            string file = image.GetProperty("filename").GetString() ?? "";
            string imageFormat = image.GetProperty("format").GetString() ?? "";
            if (image.TryGetProperty("encrypted", out JsonElement encrypted) && encrypted.ValueKind == JsonValueKind.True)
            {
                throw new ExternalToolException($"{file} is encrypted");
            }
            if (image.TryGetProperty("format-specific", out JsonElement specific)
                && specific.TryGetProperty("data", out JsonElement data)
                && data.TryGetProperty("data-file", out _))
            {
                throw new ExternalToolException($"{file} has an external data file");
            }
            chain.Add((Path.GetFullPath(file, Path.GetDirectoryName(imagePath)!), imageFormat));
        }
        return chain;
    }

    /// <summary>Runs qemu-img in <paramref name="directory"/>; a failure is an <see cref="ExternalToolException"/> with its stderr.</summary>
    private async Task<string> RunAsync(IReadOnlyList<string> arguments, string? directory, CancellationToken cancellationToken)
    {
        try
        {
            return await ExternalProcess.RunAsync(path, arguments, cancellationToken, workingDirectory: directory ?? "/");
        }
        catch (ExternalProcessException e)
        {
            throw new ExternalToolException(e.Message, e);
        }
    }
}
