using System.Diagnostics;
using System.Globalization;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// A provider's restore source of mechanism DIRECTORY, read as a pax tar stream so it goes through the same
/// validate-while-extract path as every archive. tar runs with the provider's uid and gid (setpriv), so the host reads
/// only what the provider itself could: a tree that links to host files gains nothing. Owners are taken as stored.
/// </summary>
internal sealed class DirectoryArchive : Stream
{
    private readonly Process _tar;
    private readonly Stream _output;
    private readonly Task<string> _errors;

    private DirectoryArchive(Process tar)
    {
        _tar = tar;
        _output = tar.StandardOutput.BaseStream;
        _errors = tar.StandardError.ReadToEndAsync();
    }

    public static Stream Open(string directory, uint providerUid, uint providerGid)
    {
        if (!Path.IsPathFullyQualified(directory) || !Directory.Exists(directory))
        {
            throw new BackupException($"the provider's restore directory '{directory}' is not an absolute path to a directory");
        }
        var info = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (string argument in (string[])[
            "--reuid=" + providerUid.ToString(CultureInfo.InvariantCulture), "--regid=" + providerGid.ToString(CultureInfo.InvariantCulture),
            "--clear-groups", "--", "tar", "--create", "--file=-", "--format=pax", "--numeric-owner", "--xattrs", "--xattrs-include=*",
            "--acls", "--sparse", "--one-file-system", "--directory=" + directory, "--", "."])
        {
            info.ArgumentList.Add(argument);
        }
        info.Environment["LC_ALL"] = "C";
        Process tar = Process.Start(info) ?? throw new BackupException("cannot start tar for the provider's restore directory");
        tar.StandardInput.Close();
        return new DirectoryArchive(tar);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int read = await _output.ReadAsync(buffer, cancellationToken);
        if (read == 0 && buffer.Length > 0)
        {
            // EOF is only the end of the archive if tar succeeded; otherwise the tree was not read whole.
            await _tar.WaitForExitAsync(cancellationToken);
            if (_tar.ExitCode != 0)
            {
                throw new IOException($"reading the provider's restore directory failed (tar exit status {_tar.ExitCode}): {(await _errors).Trim()}");
            }
        }
        return read;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            if (!_tar.HasExited)
            {
                _tar.Kill(entireProcessTree: true);
            }
            _tar.WaitForExit();
            ExternalProcess.DisposeWithPipes(_tar);
        }
        base.Dispose(disposing);
    }
}
