using System.Diagnostics;

namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// Decompresses through a CLI (zstd, xz, bzip2 with -dc): the archive is fed to its stdin, the plain tar is read from
/// its stdout. The decompressor parses untrusted input, so it runs as nobody (uid/gid 65534, no groups,
/// no_new_privs) via util-linux setpriv, not as host root. A non-zero exit at EOF is corrupt input.
/// </summary>
internal sealed class ExternalDecompressorStream : ReadOnlyStream
{
    private const string Nobody = "65534";

    private readonly string _tool;
    private readonly Process _process;
    private readonly Task _feeder;
    private readonly Task<string> _errors;
    private readonly Stream _output;

    public ExternalDecompressorStream(string tool, Stream source)
    {
        _tool = tool;
        _process = Process.Start(ProcessRunner.CreateStartInfo("setpriv",
            ["--reuid=" + Nobody, "--regid=" + Nobody, "--clear-groups", "--no-new-privs", "--", tool, "-dc"]))
            ?? throw new InvalidOperationException($"could not start {tool}");
        _output = _process.StandardOutput.BaseStream;
        _errors = _process.StandardError.ReadToEndAsync(CancellationToken.None);
        _feeder = FeedAsync(source, _process.StandardInput);
    }

    public override int Read(Span<byte> buffer)
    {
        byte[] chunk = new byte[buffer.Length];
        int read = ReadAsync(chunk).AsTask().GetAwaiter().GetResult();
        chunk.AsSpan(0, read).CopyTo(buffer);
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int read = await _output.ReadAsync(buffer, cancellationToken);
        if (read == 0 && buffer.Length > 0)
        {
            await _process.WaitForExitAsync(cancellationToken);
            await _feeder;
            if (_process.ExitCode != 0)
            {
                throw new InvalidDataException($"{_tool} could not decompress the archive (exit {_process.ExitCode}): {(await _errors).Trim()}");
            }
        }
        return read;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            ProcessRunner.KillAndDispose(_process);
        }
        base.Dispose(disposing);
    }

    private static async Task FeedAsync(Stream source, StreamWriter stdin)
    {
        await Task.Yield();
        try
        {
            await source.CopyToAsync(stdin.BaseStream);
        }
        catch (IOException)
        {
            // The decompressor stopped reading (it exited on bad input); its exit status tells why.
        }
        finally
        {
            try
            {
                stdin.Close();
            }
            catch (IOException)
            {
                // Same: the pipe is already broken.
            }
        }
    }
}
