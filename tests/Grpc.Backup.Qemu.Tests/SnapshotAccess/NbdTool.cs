using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Grpc.Backup.Qemu.Tests.SnapshotAccess;

/// <summary>
/// The provider's side of the NBD export, played by Python libnbd (<c>/usr/bin/python3</c>, package
/// python3-libnbd): this test project has no NBD client of its own. Each call runs one short script.
/// </summary>
internal sealed class NbdTool
{
    // Prints one JSON object per call; NBD errors are results ("errno"), not failures, because several
    // tests assert that an operation is refused.
    private const string Script = """
        import hashlib, json, sys, time
        import nbd

        def connect(uri, ctx=None):
            h = nbd.NBD()
            if ctx:
                h.add_meta_context(ctx)
            h.connect_uri(uri)
            return h

        def extents(h, ctx):
            size, off, result = h.get_size(), 0, []
            while off < size:
                ents = []
                def cb(c, o, e, err):
                    if c == ctx:
                        ents.extend(e)
                    return 0
                h.block_status(min(size - off, 1 << 30), off, cb)
                for ln, fl in zip(ents[::2], ents[1::2]):
                    result.append([off, ln, fl])
                    off += ln
            return result

        def main(cmd, uri, *rest):
            if cmd == "sha256":
                h = connect(uri)
                size, off, d = h.get_size(), 0, hashlib.sha256()
                chunk = int(rest[0]) if rest else 4 << 20
                started = time.monotonic()
                while off < size:
                    n = min(chunk, size - off)
                    d.update(h.pread(n, off))
                    off += n
                return {"sha256": d.hexdigest(), "size": size, "seconds": time.monotonic() - started}
            if cmd == "map":
                ctx = rest[0]
                h = connect(uri, ctx)
                if not h.can_meta_context(ctx):
                    return {"error": "context not offered"}
                return {"size": h.get_size(), "extents": extents(h, ctx)}
            if cmd == "copy":
                h = connect(uri)
                size, off = h.get_size(), 0
                with open(rest[0], "wb") as f:
                    while off < size:
                        n = min(4 << 20, size - off)
                        f.write(h.pread(n, off))
                        off += n
                return {"size": size}
            if cmd == "apply":
                ctx, path = rest
                h = connect(uri, ctx)
                applied = 0
                with open(path, "r+b") as f:
                    for off, ln, fl in extents(h, ctx):
                        if fl & 1:
                            f.seek(off)
                            f.write(h.pread(ln, off))
                            applied += ln
                return {"applied": applied}
            if cmd in ("pread", "pwrite", "trim"):
                off, ln = int(rest[0]), int(rest[1])
                h = connect(uri)
                # A careless client: libnbd's own alignment and command checks are off, the server must cope.
                h.set_strict_mode(0)
                try:
                    if cmd == "pread":
                        h.pread(ln, off)
                    elif cmd == "pwrite":
                        h.pwrite(b"\x55" * ln, off)
                    else:
                        h.trim(ln, off)
                    return {"ok": True}
                except nbd.Error as e:
                    return {"ok": False, "errno": e.errno, "error": e.string}
            if cmd == "hold":
                h = connect(uri)
                print(json.dumps({"connected": True}), flush=True)
                sys.stdin.read()
                return {"released": True}
            raise SystemExit("unknown command " + cmd)

        print(json.dumps(main(*sys.argv[1:])), flush=True)
        """;

    private readonly string _scriptPath;

    public NbdTool(string directory)
    {
        _scriptPath = Path.Combine(directory, "nbd_tool.py");
        File.WriteAllText(_scriptPath, Script);
    }

    public static string Uri(string socketPath, string exportName) => $"nbd+unix:///{exportName}?socket={socketPath}";

    public static string Uri(SnapshotExport export) => Uri(export.NbdSocketPath, export.ExportName);

    public async Task<string> Sha256Async(string uri) => (string)(await RunAsync("sha256", uri))["sha256"]!;

    /// <summary>Reads the whole export in requests of <paramref name="requestSize"/>, back to back, timing only the reads.</summary>
    public async Task<(string Sha256, double Seconds)> TimedSha256Async(string uri, int requestSize)
    {
        JsonObject result = await RunAsync("sha256", uri, requestSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return ((string)result["sha256"]!, (double)result["seconds"]!);
    }

    /// <summary>The extents of <paramref name="context"/> with bit 0 (dirty) set, adjacent ones merged.</summary>
    public async Task<List<(long Offset, long Length)>> DirtyExtentsAsync(string uri, string context)
    {
        JsonObject result = await RunAsync("map", uri, context);
        Assert.Null((string?)result["error"]);
        var dirty = new List<(long Offset, long Length)>();
        foreach (JsonNode? extent in result["extents"]!.AsArray())
        {
            long offset = (long)extent![0]!, length = (long)extent[1]!, flags = (long)extent[2]!;
            if ((flags & 1) == 0)
            {
                continue;
            }

            if (dirty.Count > 0 && dirty[^1].Offset + dirty[^1].Length == offset)
            {
                dirty[^1] = (dirty[^1].Offset, dirty[^1].Length + length);
            }
            else
            {
                dirty.Add((offset, length));
            }
        }

        return dirty;
    }

    /// <summary>Reads the whole export into <paramref name="path"/> (a full backup).</summary>
    public Task CopyAsync(string uri, string path) => RunAsync("copy", uri, path);

    /// <summary>Patches the export's dirty extents into <paramref name="path"/> (an incremental on top of it); returns the bytes applied.</summary>
    public async Task<long> ApplyDirtyAsync(string uri, string context, string path) => (long)(await RunAsync("apply", uri, context, path))["applied"]!;

    /// <summary>Null if the read succeeded, else the NBD errno name (e.g. <c>EINVAL</c>).</summary>
    public Task<string?> ReadErrorAsync(string uri, long offset, long length) => ErrnoAsync("pread", uri, offset, length);

    public Task<string?> WriteErrorAsync(string uri, long offset, long length) => ErrnoAsync("pwrite", uri, offset, length);

    public Task<string?> TrimErrorAsync(string uri, long offset, long length) => ErrnoAsync("trim", uri, offset, length);

    /// <summary>A client that stays connected until the returned handle is disposed.</summary>
    public async Task<Process> HoldAsync(string uri)
    {
        Process process = Start("hold", uri);
        try
        {
            string? line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Contains("connected", line ?? await process.StandardError.ReadToEndAsync(), StringComparison.Ordinal);
            return process;
        }
        catch
        {
            process.Kill(entireProcessTree: true);
            process.Dispose();
            throw;
        }
    }

    private async Task<string?> ErrnoAsync(string command, string uri, long offset, long length)
    {
        JsonObject result = await RunAsync(command, uri, offset.ToString(CultureInfo.InvariantCulture), length.ToString(CultureInfo.InvariantCulture));
        return (bool)result["ok"]! ? null : (string?)result["errno"] ?? "unknown";
    }

    private async Task<JsonObject> RunAsync(params string[] arguments)
    {
        using Process process = Start(arguments);
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        Assert.True(process.ExitCode == 0, $"nbd_tool.py {string.Join(' ', arguments)} exited with {process.ExitCode}: {await stderr}");
        return JsonNode.Parse(await stdout)!.AsObject();
    }

    private Process Start(params string[] arguments)
    {
        var startInfo = new ProcessStartInfo("/usr/bin/python3")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        startInfo.ArgumentList.Add(_scriptPath);
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        return Process.Start(startInfo)!;
    }
}
