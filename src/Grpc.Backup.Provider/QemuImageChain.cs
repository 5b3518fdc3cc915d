using System.Globalization;
using System.Text;
using System.Text.Json;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Provider;

/// <summary>
/// A qcow2 (or raw) image and its backing chain, read from an untrusted repository one link at a time and checked
/// before QEMU opens it: every link is a plain file inside the allowed directory, raw or qcow2 with its format
/// recorded, with no external data file and no encryption. Backing names are never handed to QEMU to parse: a
/// header's <c>blkdebug::/etc/hostname</c>, <c>json:{...}</c> or <c>nbd+unix://?socket=...</c> is a driver
/// specification, not a file, and is refused here. <see cref="ImageSpec"/> then names every link explicitly with
/// the <c>file</c> protocol driver, as a <c>json:</c> image specification for qemu-nbd.
/// </summary>
public sealed class QemuImageChain
{
    private const int MaxDepth = 1024;
    private static readonly TimeSpan InfoTimeout = TimeSpan.FromSeconds(60);

    private QemuImageChain(IReadOnlyList<(string File, string Format)> links, long virtualSize)
    {
        Links = links;
        VirtualSize = virtualSize;
    }

    /// <summary>The chain from the image itself down to its base: absolute paths and formats.</summary>
    public IReadOnlyList<(string File, string Format)> Links { get; }

    /// <summary>The virtual size the image's own header declares.</summary>
    public long VirtualSize { get; }

    /// <summary>
    /// Reads and checks the chain of <paramref name="imagePath"/> (of <paramref name="format"/>, never probed). Each
    /// link is opened with <c>qemu-img info</c> alone (no backing opened), as an explicit file.
    /// </summary>
    /// <param name="qemuImg">The qemu-img program.</param>
    /// <param name="imagePath">The image, an absolute path inside <paramref name="allowedDirectory"/>.</param>
    /// <param name="format">raw or qcow2.</param>
    /// <param name="allowedDirectory">Every link must lie beneath it (no symlink out of it counts: paths are resolved).</param>
    /// <param name="expectedSize">The size the archive's metadata records; the image must declare exactly that, when given.</param>
    /// <param name="cancellationToken">Cancels the qemu-img runs.</param>
    /// <exception cref="InvalidDataException">The chain is refused; the message says which link and why.</exception>
    public static async Task<QemuImageChain> ReadAsync(string qemuImg, string imagePath, string format, string allowedDirectory,
        long? expectedSize, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(qemuImg);
        string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(allowedDirectory)) + "/";
        var links = new List<(string, string)>();
        string file = Path.GetFullPath(imagePath);
        string linkFormat = format;
        long virtualSize = -1;
        while (true)
        {
            CheckFile(file, linkFormat, root);
            if (links.Count >= MaxDepth)
            {
                throw new InvalidDataException($"the backing chain of {imagePath} is longer than {MaxDepth} images");
            }
            links.Add((file, linkFormat));
            using JsonDocument info = JsonDocument.Parse(await RunInfoAsync(qemuImg, FileOptions(file, linkFormat), cancellationToken));
            JsonElement report = info.RootElement;
            if (links.Count == 1)
            {
                virtualSize = report.GetProperty("virtual-size").GetInt64();
            }
            if (report.TryGetProperty("encrypted", out JsonElement encrypted) && encrypted.ValueKind == JsonValueKind.True)
            {
                throw new InvalidDataException($"{file} is encrypted");
            }
            if (report.TryGetProperty("format-specific", out JsonElement specific) && specific.TryGetProperty("data", out JsonElement data)
                && data.TryGetProperty("data-file", out _))
            {
                throw new InvalidDataException($"{file} has an external data file");
            }
            if (!report.TryGetProperty("backing-filename", out JsonElement backingName) || backingName.GetString() is not { Length: > 0 } backing)
            {
                break;
            }
            if (!report.TryGetProperty("backing-filename-format", out JsonElement backingFormat) || backingFormat.GetString() is not { } next)
            {
                throw new InvalidDataException($"{file} names backing '{backing}' without its format (probing a repository's image is refused)");
            }
            file = ResolveBacking(file, backing);
            linkFormat = next;
        }
        if (expectedSize is { } size && virtualSize != size)
        {
            throw new InvalidDataException($"{imagePath} declares {virtualSize} bytes; the archive records {size}");
        }
        return new QemuImageChain(links, virtualSize);
    }

    /// <summary>
    /// The whole chain as one <c>json:</c> image specification (the image argument of qemu-nbd or qemu-img, without
    /// <c>--image-opts</c>): every link named with the <c>file</c> driver and its format, down to the base, whose
    /// backing is set to none, so QEMU follows nothing a header says. Nested JSON grows with the chain's length;
    /// dotted <c>--image-opts</c> keys (<c>backing.backing.….file.filename</c>) grow with its square and pass the
    /// kernel's 128 KiB limit for one argument at about 100 links.
    /// </summary>
    public string ImageSpec() => "json:" + ChainJson(0);

    /// <summary>
    /// A new qcow2 overlay file on top of this chain as one <c>json:</c> specification: the overlay and every link below
    /// it named explicitly, so a writable qemu-nbd on the overlay follows nothing a (tampered) older image's header says.
    /// </summary>
    public string OverlayImageSpec(string overlayFile)
    {
        ArgumentException.ThrowIfNullOrEmpty(overlayFile);
        var json = new StringBuilder("json:");
        AppendLink(json, Path.GetFullPath(overlayFile), "qcow2");
        json.Append(",\"backing\":").Append(ChainJson(0)).Append('}');
        return json.ToString();
    }

    /// <summary>Links from <paramref name="first"/> down to the base as nested JSON objects.</summary>
    private string ChainJson(int first)
    {
        var json = new StringBuilder();
        for (int i = first; i < Links.Count; i++)
        {
            AppendLink(json, Links[i].File, Links[i].Format);
            if (i + 1 < Links.Count)
            {
                json.Append(",\"backing\":");
            }
            else if (Links[i].Format == "qcow2")
            {
                // The base: whatever its header names, no backing is opened.
                json.Append(",\"backing\":null");
            }
        }
        json.Append('}', Links.Count - first);
        return json.ToString();
    }

    /// <summary>One image as an explicit file for <c>--image-opts</c>, its backing (if any) left closed.</summary>
    private static string FileOptions(string file, string format) => $"driver={format},file.driver=file,file.filename={Escape(file)}";

    /// <summary>QEMU's option syntax: a comma inside a value is doubled.</summary>
    private static string Escape(string value) => value.Replace(",", ",,", StringComparison.Ordinal);

    /// <summary>One link's object, left open for its backing: <c>{"driver":F,"file":{"driver":"file","filename":P}</c>.</summary>
    private static void AppendLink(StringBuilder json, string file, string format) =>
        json.Append(CultureInfo.InvariantCulture,
            $"{{\"driver\":\"{JsonEncodedText.Encode(format)}\",\"file\":{{\"driver\":\"file\",\"filename\":\"{JsonEncodedText.Encode(file)}\"}}");

    private static void CheckFile(string file, string format, string root)
    {
        if (format is not ("raw" or "qcow2"))
        {
            throw new InvalidDataException($"{file} is a {format} image; only raw and qcow2 are accepted");
        }
        if (!file.StartsWith(root, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"the chain reaches {file}, outside {root}");
        }
        var info = new FileInfo(file);
        if (info.LinkTarget is not null || !info.Exists)
        {
            throw new InvalidDataException($"the chain names {file}, which is not a regular file (missing, or a symlink)");
        }
    }

    /// <summary>
    /// A backing name as a plain path: relative to its image's directory or absolute, never a protocol
    /// (<c>nbd+unix:</c>, <c>blkdebug:</c>, <c>json:</c>, anything with a colon before the first slash).
    /// </summary>
    private static string ResolveBacking(string image, string backing)
    {
        int slash = backing.IndexOf('/', StringComparison.Ordinal);
        string head = slash < 0 ? backing : backing[..slash];
        if (head.Contains(':', StringComparison.Ordinal) || backing.Any(char.IsControl))
        {
            throw new InvalidDataException($"{image} names backing '{backing}', which is a driver or protocol specification, not a plain file");
        }
        return Path.GetFullPath(backing, Path.GetDirectoryName(image)!);
    }

    /// <summary>
    /// <c>qemu-img info</c> of one link through the one process helper, which closes its pipes when it returns: a
    /// chain read link by link runs one qemu-img per link, and pipes left to the finalizer piled up by the hundred.
    /// </summary>
    private static async Task<string> RunInfoAsync(string qemuImg, string imageOptions, CancellationToken cancellationToken)
    {
        try
        {
            return await ExternalProcess.RunAsync(qemuImg, ["info", "-U", "--output=json", "--image-opts", imageOptions], cancellationToken,
                InfoTimeout, workingDirectory: "/");
        }
        catch (ExternalProcessException e)
        {
            throw new InvalidDataException($"qemu-img info failed: {(e.ErrorOutput is { Length: > 0 } error ? error : e.Message)}", e);
        }
    }
}
